import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Connection, Database, type KuzuValue } from "kuzu";
import { describe, expect, test } from "vitest";
import { MIGRATIONS } from "../../../core/src/provenance/cypher.ts";
import { DATABASE_NAME, RunStore } from "../../../core/src/provenance/kuzu.ts";
import { ProvenanceError } from "../../../core/src/provenance/store.ts";
import { ATTEMPTS_PER_STEP, attempts, runMeta, STDOUT_BYTES, step } from "./steps.ts";

const ROOT = join(import.meta.dirname, "..", "..", "..");

function runDir(): string {
  return mkdtempSync(join(tmpdir(), "dsassist-prov-"));
}

/** Ask a closed run database directly, read-only, the way a user's Cypher would. */
function cypher(dir: string, text: string): Promise<Record<string, KuzuValue>[]> {
  return raw(dir, text, true);
}

function writable(dir: string, text: string): Promise<Record<string, KuzuValue>[]> {
  return raw(dir, text, false);
}

async function raw(dir: string, text: string, readOnly: boolean): Promise<Record<string, KuzuValue>[]> {
  const db = new Database(join(dir, DATABASE_NAME), 64 * 1024 * 1024, true, readOnly);
  const conn = new Connection(db);
  try {
    const result = await conn.query(text);
    const results = Array.isArray(result) ? result : [result];
    const rows = await results.at(-1)!.getAll();
    for (const r of results) r.close();
    return rows;
  } finally {
    await conn.close();
    await db.close();
  }
}

async function count(dir: string, pattern: string): Promise<number> {
  const [row] = await cypher(dir, `MATCH ${pattern} RETURN count(*) AS n`);
  return Number(row?.n);
}

/** A run of three judged steps and one unjudged, a tree: 0 <- 1 <- 2, 0 <- 3. */
async function recordedRun(): Promise<string> {
  const dir = runDir();
  await mkdir(join(dir, "plots"));
  writeFileSync(join(dir, "plots", "step-1.png"), "png bytes");
  const store = await RunStore.open(dir);
  await store.recordRun(runMeta());
  await store.recordStep(step(0, null, null), attempts(0), "2026-01-02T03:04:06.000Z", []);
  await store.recordStep(step(1, 0, 0.8, "one-hot helps"), attempts(1), "2026-01-02T03:04:07.000Z", [
    { path: "plots/step-1.png", mediaType: "image/png" },
  ]);
  await store.recordStep(step(2, 1, 0.85), attempts(2), "2026-01-02T03:04:08.000Z", []);
  await store.recordStep(step(3, 0, 0.75), attempts(3), "2026-01-02T03:04:09.000Z", []);
  await store.close();
  return dir;
}

describe("RunStore", () => {
  test("creates the PROV schema at the newest version", async () => {
    const dir = await recordedRun();
    const tables = (await cypher(dir, "CALL show_tables() RETURN name, type")).map(
      (t) => `${t.type} ${t.name}`,
    );
    const nodes = ["SchemaVersion", "Run", "Step", "Execution", "Code", "Lesson", "Artifact"];
    const rels = ["PARENT", "IN_RUN", "EXECUTED", "HAS_CODE", "DERIVED_FROM", "LEARNED", "GENERATED", "USED"];
    expect(tables.sort()).toEqual([...nodes.map((n) => `NODE ${n}`), ...rels.map((r) => `REL ${r}`)].sort());
    await (await RunStore.open(dir)).close(); // a re-open migrates nothing
    const versions = await cypher(dir, "MATCH (s:SchemaVersion) RETURN s.version AS v ORDER BY v");
    expect(versions.map((r) => r.v)).toEqual(MIGRATIONS.map((m) => m.version));
  });

  test("refuses a database from a newer dsassist", async () => {
    const dir = await recordedRun();
    await writable(dir, "CREATE (:SchemaVersion {version: 99, why: 'the future'})");
    await expect(RunStore.open(dir)).rejects.toThrow(
      `${join(dir, DATABASE_NAME)} has schema version 99, newer than this dsassist's ${MIGRATIONS.at(-1)!.version}`,
    );
  });

  test("steps and the run round-trip exactly, after close and re-open", async () => {
    const dir = await recordedRun();
    const store = await RunStore.openExisting(dir);
    try {
      const recorded = await store.steps();
      expect(recorded.map((r) => r.summary)).toEqual([
        step(0, null, null),
        step(1, 0, 0.8, "one-hot helps"),
        step(2, 1, 0.85),
        step(3, 0, 0.75),
      ]);
      for (const [id, r] of recorded.entries()) {
        const last = attempts(id).at(-1)!;
        expect(r.code).toBe(last.code);
        expect(r.execution).toEqual(last.execution); // records included: resume needs the profile
      }
      expect(await store.run()).toEqual({ ...runMeta(), status: "running", result: null });
      await store.recordResult({ status: "finished", best_step: 2, best_score: 0.85, answer: "yes" });
      expect((await store.run())?.result).toEqual({
        status: "finished",
        best_step: 2,
        best_score: 0.85,
        answer: "yes",
      });
    } finally {
      await store.close();
    }
  });

  test("PARENT points from child to parent and answers which steps beat their parent", async () => {
    const dir = await recordedRun();
    const better = await cypher(
      dir,
      "MATCH (c:Step)-[:PARENT]->(p:Step) WHERE c.score > p.score RETURN c.id AS child, p.id AS parent ORDER BY child",
    );
    expect(better).toEqual([{ child: 2, parent: 1 }]);
    const unscored = await cypher(dir, "MATCH (s:Step) WHERE s.score IS NULL RETURN s.id AS id");
    expect(unscored).toEqual([{ id: 0 }]);
  });

  test("links attempts, code, fixes, lessons, artifacts and the dataset", async () => {
    const dir = await recordedRun();
    expect(await count(dir, "(:Step)-[:EXECUTED]->(:Execution)")).toBe(8);
    expect(await count(dir, "(:Step)-[:IN_RUN]->(:Run)")).toBe(4);
    const fixes = await cypher(
      dir,
      `MATCH (s:Step {id: 1})-[:EXECUTED]->(e:Execution)-[:HAS_CODE]->(fix:Code)-[:DERIVED_FROM]->(old:Code)
       RETURN e.fix_rule AS rule, old.text AS fixed`,
    );
    expect(fixes).toEqual([{ rule: "import_missing", fixed: attempts(1)[0]!.code }]);
    const lessons = await cypher(
      dir,
      "MATCH (s:Step)-[:LEARNED]->(l:Lesson) RETURN s.id AS id, l.text AS text",
    );
    expect(lessons).toEqual([{ id: 1, text: "one-hot helps" }]);
    const [plot] = await cypher(
      dir,
      "MATCH (:Step {id: 1})-[:GENERATED]->(a:Artifact) RETURN a.sha256 AS sha256, a.bytes AS bytes, a.media_type AS mediaType",
    );
    expect(plot).toEqual({
      sha256: createHash("sha256").update("png bytes").digest("hex"),
      bytes: 9,
      mediaType: "image/png",
    });
    const [data] = await cypher(dir, "MATCH (:Run)-[:USED]->(a:Artifact) RETURN a.path AS path");
    expect(data?.path).toBe(runMeta().dataset.path);
  });

  test("recording a step id again changes nothing", async () => {
    const dir = await recordedRun();
    const store = await RunStore.open(dir);
    const again = await store.recordStep(
      step(1, 0, 0.99, "other"),
      attempts(1),
      "2026-01-02T03:06:00.000Z",
      [],
    );
    await store.close();
    expect(again).toBe(false);
    expect(await count(dir, "(:Step)")).toBe(4);
    expect(await count(dir, "(:Execution)")).toBe(8);
    expect(await count(dir, "(:Lesson)")).toBe(1);
    const [s] = await cypher(dir, "MATCH (s:Step {id: 1}) RETURN s.score AS score");
    expect(s?.score).toBe(0.8);
  });

  test("a step whose parent is not recorded fails whole, and the store goes on", async () => {
    const dir = await recordedRun();
    const store = await RunStore.open(dir);
    try {
      await expect(
        store.recordStep(step(9, 7, 0.9), attempts(9), "2026-01-02T03:05:00.000Z", []),
      ).rejects.toThrow(new ProvenanceError("step 9: its parent step 7 is not recorded"));
      expect(await store.recordStep(step(4, 3, 0.9), attempts(4), "2026-01-02T03:05:00.000Z", [])).toBe(true);
      expect((await store.steps()).map((r) => r.summary.id)).toEqual([0, 1, 2, 3, 4]);
    } finally {
      await store.close();
    }
    expect(await count(dir, "(:Execution)")).toBe(10); // none of step 9's
  });

  test("user errors are one line", async () => {
    const dir = runDir();
    await expect(RunStore.openExisting(dir)).rejects.toThrow(`no run in ${dir}: provenance.kuzu not found`);
    const store = await RunStore.open(dir);
    try {
      await expect(
        store.recordStep(step(0, null, null), attempts(0), "2026-01-02T03:05:00.000Z"),
      ).rejects.toThrow(/records no run yet/);
      await store.recordRun(runMeta());
      await expect(store.recordRun(runMeta("run-2"))).rejects.toThrow(/already records run run-1$/);
      await expect(
        store.recordStep(step(0, null, null), attempts(0), "2026-01-02T03:05:00.000Z", [
          { path: "nope.png", mediaType: "image/png" },
        ]),
      ).rejects.toThrow(/^step 0: artifact nope.png cannot be read: ENOENT[^\n]*$/);
    } finally {
      await store.close();
    }
  });

  test("concurrent steps (parallel branches) are each recorded whole", async () => {
    const dir = runDir();
    const store = await RunStore.open(dir);
    try {
      await store.recordRun(runMeta());
      await store.recordStep(step(0, null, null), attempts(0), "2026-01-02T03:05:00.000Z");
      const ids = [1, 2, 3, 4, 5, 6];
      const recorded = await Promise.all(
        ids.map((id) => store.recordStep(step(id, 0, 0.8), attempts(id), "2026-01-02T03:05:00.000Z")),
      );
      expect(recorded).toEqual(ids.map(() => true));
      expect((await store.steps()).map((r) => r.summary.id)).toEqual([0, ...ids]);
    } finally {
      await store.close();
    }
    expect(await count(dir, "(:Execution)")).toBe(14);
  });

  test("a second process cannot open a run database in use", async () => {
    const dir = await recordedRun();
    const store = await RunStore.open(dir);
    try {
      const other = spawn(process.execPath, ["--import", "tsx", "-e", openScript(dir)], { cwd: ROOT });
      const [code, stderr] = await exited(other);
      expect(code).toBe(0);
      expect(stderr).toBe(
        `ProvenanceError: ${join(dir, DATABASE_NAME)} cannot be opened: another process has it open (one writer at a time)\n`,
      );
    } finally {
      await store.close();
    }
  });

  test("kill -9 in the middle of a step's transaction leaves only whole steps", async () => {
    const dir = runDir();
    const writer = spawn(process.execPath, ["--import", "tsx", join(import.meta.dirname, "writer.ts"), dir], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "inherit"],
    });
    const { begun, done } = await killMidStep(writer, 3);
    expect(begun).toBeGreaterThan(done); // killed after a step began and before it was done

    const store = await RunStore.open(dir);
    try {
      const steps = await store.steps();
      const ids = steps.map((s) => s.summary.id);
      // every step that finished is there; the one in flight is there whole or not at all
      expect(ids).toEqual(Array.from({ length: ids.length }, (_, i) => i));
      expect(ids.length === done + 1 || ids.length === begun + 1).toBe(true);
      for (const s of steps) expect(s.execution.stdout).toHaveLength(STDOUT_BYTES);
      // and the store goes on where the writer stopped
      const next = ids.length;
      expect(
        await store.recordStep(step(next, next - 1, 0.9), attempts(next), "2026-01-02T03:05:00.000Z"),
      ).toBe(true);
    } finally {
      await store.close();
    }
    const executions = await cypher(
      dir,
      "MATCH (s:Step)-[:EXECUTED]->(e:Execution) RETURN s.id AS id, count(e) AS n",
    );
    for (const { id, n } of executions)
      expect(n).toBe(Number(id) === executions.length - 1 ? 2 : ATTEMPTS_PER_STEP);
    const lessons = await count(dir, "(:Step)-[:LEARNED]->(:Lesson)");
    expect(lessons).toBe(executions.length - 1);
  });
});

function openScript(dir: string): string {
  return `import("${join(ROOT, "core/src/provenance/kuzu.ts")}").then((m) => m.RunStore.open(${JSON.stringify(dir)}))
    .then(() => process.exit(1), (e) => { process.stderr.write(e.name + ": " + e.message + "\\n"); process.exit(0); });`;
}

function exited(child: ChildProcess): Promise<[number | null, string]> {
  let stderr = "";
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  return new Promise((resolve) => child.on("exit", (code) => resolve([code, stderr])));
}

/** Wait for the writer to finish `steps` steps, kill it shortly after it begins the next one. */
function killMidStep(writer: ChildProcess, steps: number): Promise<{ begun: number; done: number }> {
  let begun = -1;
  let done = -1;
  let buffered = "";
  return new Promise((resolve, reject) => {
    writer.on("exit", (code, signal) => {
      if (signal === "SIGKILL") resolve({ begun, done });
      else reject(new Error(`the writer exited by itself (code ${code})`));
    });
    writer.stdout?.on("data", (chunk: Buffer) => {
      buffered += chunk.toString();
      const lines = buffered.split("\n");
      buffered = lines.pop()!;
      for (const line of lines) {
        const [word, n] = line.split(" ");
        if (word === "done") done = Number(n);
        if (word !== "begin") continue;
        begun = Number(n);
        // a step takes tens of milliseconds, nearly all of it inside its transaction
        if (begun >= steps) setTimeout(() => writer.kill("SIGKILL"), 5);
      }
    });
  });
}
