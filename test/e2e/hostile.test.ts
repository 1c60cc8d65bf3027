/**
 * Hostile cells as ordinary steps of a real run (test/fixtures/hostile): the sandbox contains
 * each one and names its cause, the run goes on, and ends with its final model and report.
 */
import { randomUUID } from "node:crypto";
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cypher, dsassist, example, ROOT, resultOf, stepRows } from "./cli.ts";

const FIXTURES = join(ROOT, "test/fixtures/hostile");
const CANARY = "canary-7f3a";
const SECRET = `tok-${randomUUID()}`;
const FILE_ERRORS = ["OSError", "PermissionError", "FileNotFoundError"];
/** template -> the names its cause may carry */
const EXPECTED: Record<string, string[]> = {
  hostile_network: ["ConnectionRefusedError", "OSError"],
  hostile_read_env: ["KeyError"],
  hostile_memory_bomb: ["MemoryLimit"],
  hostile_fork_bomb: ["ProcessLimit"],
  hostile_write_outside: FILE_ERRORS,
  hostile_exit: ["KernelDied"],
  hostile_delete_db_relative: FILE_ERRORS,
  hostile_sigkill: ["KernelDied"],
  hostile_delete_db_absolute: FILE_ERRORS,
  hostile_segfault: ["KernelDied"],
  hostile_overwrite_db: FILE_ERRORS,
  hostile_tamper_checkpoints: ["KernelDied"],
  hostile_infinite_loop: ["Timeout"],
};
/** the attacks after which a fresh kernel replaces the lost one, restored from the last checkpoint */
const KERNEL_REPLACED = new Set([
  "hostile_fork_bomb",
  "hostile_exit",
  "hostile_sigkill",
  "hostile_segfault",
  "hostile_tamper_checkpoints",
]);

interface HostileStep {
  id: number;
  template: string;
  verdict: string;
  error: string | null;
  name: string | null;
  value: string;
  stdout: string;
}

/** Each hostile template's step with its last attempt, by template id. */
async function hostileSteps(out: string): Promise<Map<string, HostileStep>> {
  const rows = await cypher(
    out,
    `MATCH (s:Step)-[:EXECUTED]->(e:Execution) WHERE s.template_id STARTS WITH 'hostile_'
     RETURN s.id AS id, s.template_id AS template, s.verdict AS verdict, s.error AS error,
       e.error AS cause, e.stdout AS stdout
     ORDER BY s.id, e.attempt`,
  );
  return new Map(
    rows.map((r) => {
      const cause =
        r.cause === null ? null : (JSON.parse(String(r.cause)) as { name: string; value: string });
      const step: HostileStep = {
        id: Number(r.id),
        template: String(r.template),
        verdict: String(r.verdict),
        error: r.error === null ? null : String(r.error),
        name: cause?.name ?? null,
        value: cause?.value ?? "",
        stdout: String(r.stdout),
      };
      return [step.template, step];
    }),
  );
}

/** Every file under `folder`, recursively. */
function files(folder: string): string[] {
  return readdirSync(folder, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name));
}

describe("a run whose steps attack the sandbox", () => {
  // outside the kernel's private /tmp, so that the kernel sees what lies next to the run folder
  const base = mkdtempSync(join(existsSync("/var/tmp") ? "/var/tmp" : tmpdir(), "dsassist-hostile-"));
  const out = join(base, "run");
  const outside = join(base, "outside");
  let steps = new Map<string, HostileStep>();

  beforeAll(async () => {
    chmodSync(base, 0o755);
    mkdirSync(outside);
    chmodSync(outside, 0o777); // only the sandbox, not file permissions, keeps the kernel out
    writeFileSync(join(outside, "sentinel.txt"), "must not change");
    process.env.DSASSIST_PROBE_TOKEN = SECRET;
    process.env.OPENAI_API_KEY = SECRET;
    const hostile = Object.keys(EXPECTED).length + 2; // and the canary and the output flood, which succeed
    const ran = await dsassist(
      "run",
      example("titanic"),
      "--target",
      "survived",
      "--seed",
      "0",
      "--explore-share",
      "0",
      // the cell timeout bounds the infinite loop; the budget is large enough that only the
      // step limit ends the run, on a loaded machine too
      "--cell-timeout",
      "10s",
      "--budget",
      "10m",
      // set-up (5 steps), the five model families, the hostile ones (the canary among them), the final refit
      "--max-steps",
      String(10 + hostile + 1),
      "--templates",
      join(FIXTURES, "templates"),
      "--config",
      join(FIXTURES, "dsassist.toml"),
      "--out",
      out,
    );
    expect(ran.code, ran.stderr).toBe(0);
    steps = await hostileSteps(out);
  }, 240_000);

  afterAll(() => {
    delete process.env.DSASSIST_PROBE_TOKEN;
    delete process.env.OPENAI_API_KEY;
    rmSync(base, { recursive: true, force: true });
  });

  it("finishes with its final model and report", async () => {
    const result = resultOf(out);
    expect(result.status).toBe("finished");
    expect(result.best_score).toBeGreaterThan(result.baseline_score);
    for (const name of ["result.json", "model.pkl", "model.json", "report.md", "notebook.ipynb"]) {
      expect(existsSync(join(out, name)), name).toBe(true);
    }
    const all = await stepRows(out);
    expect(all.at(-1)).toMatchObject({ template: "final", verdict: "done" });
    expect(all.map((s) => s.id)).toEqual([...Array(result.steps).keys()]);
    expect(all.filter((s) => s.verdict === "failed")).toHaveLength(result.failed_steps);
  });

  it("fails every attack, its cause named", () => {
    expect([...steps.keys()]).toEqual(expect.arrayContaining(Object.keys(EXPECTED)));
    for (const [template, names] of Object.entries(EXPECTED)) {
      const step = steps.get(template)!;
      expect(step.verdict, template).toBe("failed");
      expect(names, `${template}: ${step.name}: ${step.value}`).toContain(step.name);
      expect(step.error?.startsWith(`${step.name}: `), `${template}: ${step.error}`).toBe(true);
    }
  });

  it("replaces a lost kernel, restored from the checkpoint the step began from, and keeps one that only raised", async () => {
    const parents = new Map((await stepRows(out)).map((s) => [s.id, s.parent]));
    for (const template of Object.keys(EXPECTED)) {
      const { id, value } = steps.get(template)!;
      if (KERNEL_REPLACED.has(template)) {
        // a failed step leaves no checkpoint: its parent's is the last one
        const label = `step-${String(parents.get(id)).padStart(3, "0")}`;
        expect(value, template).toMatch(
          new RegExp(`a fresh kernel replaced it, restored from checkpoint ${label}$`),
        );
      } else {
        expect(value, template).not.toContain("fresh kernel");
      }
    }
  });

  it("shows every later cell the canary, in a new kernel exactly after a lost one", () => {
    // the cells of hostile.py print "kernel <start time> canary <canary>" before they attack;
    // a cell whose kernel dies at once may lose that line
    const ordered = [...steps.values()].sort((a, b) => a.id - b.id);
    const seen = ordered.flatMap((s) => {
      const match = /kernel (\d+) canary (\S+)/.exec(s.stdout);
      return match ? [{ id: s.id, kernel: match[1]!, canary: match[2]! }] : [];
    });
    expect(seen.length).toBeGreaterThanOrEqual(8);
    expect(seen[0]!.canary).toBe(CANARY);
    const lost = ordered.filter((s) => KERNEL_REPLACED.has(s.template)).map((s) => s.id);
    for (const [a, b] of seen.slice(1).map((b, i) => [seen[i]!, b] as const)) {
      expect(b.canary).toBe(CANARY);
      const replaced = lost.some((id) => a.id <= id && id < b.id);
      expect(a.kernel !== b.kernel, `steps ${a.id} and ${b.id}`).toBe(replaced);
    }
  });

  it("caps an output flood in the record, and the run goes on", () => {
    const flood = steps.get("hostile_output_flood")!;
    expect(flood.verdict).not.toBe("failed");
    expect(flood.stdout).toContain("characters cut");
    expect(flood.stdout.length).toBeLessThanOrEqual(256 * 1024 + 100);
  });

  it("changes nothing outside the run folder and leaks no secret into it", () => {
    expect(readdirSync(outside)).toEqual(["sentinel.txt"]);
    expect(readFileSync(join(outside, "sentinel.txt"), "utf8")).toBe("must not change");
    for (const path of files(out)) expect(readFileSync(path).includes(SECRET), path).toBe(false);
  });
});
