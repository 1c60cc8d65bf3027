/**
 * Parallel branches (--parallel 2) through the real command line: judged steps of two branches
 * run at the same time, each step after its parent, and an interrupted run resumes with no step
 * lost or repeated.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { cypher, dsassist, example, resultOf, signalAfter, tmp } from "./cli.ts";

const runArgs = (out: string) => [
  "run",
  example("titanic"),
  "--target",
  "survived",
  "--budget",
  "5m",
  "--max-steps",
  "14",
  "--seed",
  "0",
  "--parallel",
  "2",
  "--out",
  out,
];
/** kinds that build the state every branch shares: they never run beside another step */
const ALONE = new Set(["setup", "profile", "guard", "validation", "baseline", "final"]);

interface Row {
  id: number;
  parent: number | null;
  template: string;
  kind: string;
  verdict: string;
  start: number;
  end: number;
}

async function steps(out: string): Promise<Row[]> {
  const rows = await cypher(
    out,
    `MATCH (s:Step) OPTIONAL MATCH (s)-[:PARENT]->(p:Step)
     RETURN s.id AS id, p.id AS parent, s.template_id AS template, s.kind AS kind, s.verdict AS verdict,
       s.started_at AS startedAt, s.ended_at AS endedAt
     ORDER BY s.id`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    parent: r.parent === null ? null : Number(r.parent),
    template: String(r.template),
    kind: String(r.kind),
    verdict: String(r.verdict),
    start: Date.parse(String(r.startedAt)),
    end: Date.parse(String(r.endedAt)),
  }));
}

const overlap = (a: Row, b: Row) => a.start < b.end && b.start < a.end;
const modelTemplates = (rows: Row[]) => rows.filter((r) => r.kind === "model").map((r) => r.template);

describe("--parallel 2 on titanic", () => {
  const out = join(tmp(), "run");
  let rows: Row[] = [];

  beforeAll(async () => {
    const ran = await dsassist(...runArgs(out));
    expect(ran.code, ran.stderr).toBe(0);
    rows = await steps(out);
  }, 180_000);

  it("runs judged steps of two branches at the same time", () => {
    const together = rows.flatMap((a) => rows.filter((b) => a.id < b.id && overlap(a, b)).map((b) => [a, b]));
    expect(together.some(([a, b]) => !ALONE.has(a!.kind) && !ALONE.has(b!.kind))).toBe(true);
  });

  it("starts every step after its parent ended, and the final refit after every other step", () => {
    const byId = new Map(rows.map((r) => [r.id, r]));
    const early = rows.filter((r) => r.parent !== null && r.start < byId.get(r.parent)!.end);
    expect(
      early.map(
        (r) =>
          `step ${r.id} began ${byId.get(r.parent!)!.end - r.start} ms before its parent ${r.parent} ended`,
      ),
    ).toEqual([]);
    const final = rows.at(-1)!;
    expect(rows.filter((r) => r !== final && r.end > final.start).map((r) => r.id)).toEqual([]);
  });

  it("records every step once and tests no hypothesis twice, then ends with the final refit", () => {
    const result = resultOf(out);
    expect(result.status).toBe("finished");
    expect(rows.map((r) => r.id)).toEqual([...Array(result.steps).keys()]);
    const models = modelTemplates(rows);
    expect(models.length).toBeGreaterThanOrEqual(2);
    expect(new Set(models).size).toBe(models.length);
    expect(rows.at(-1)).toMatchObject({ template: "final", verdict: "done" });
    expect(existsSync(join(out, "model.pkl"))).toBe(true);
  });

  it("resumes a run killed mid-run with no step lost or repeated", async () => {
    const killed = join(tmp(), "run");
    await signalAfter(runArgs(killed), killed, 7, "SIGKILL");
    const before = await steps(killed);
    const ran = await dsassist("resume", killed);
    expect(ran.code, ran.stderr).toBe(0);
    const after = await steps(killed);
    const result = resultOf(killed);
    expect(result.status).toBe("finished");
    expect(existsSync(join(killed, "model.pkl"))).toBe(true);
    for (const row of before) expect(after.find((r) => r.id === row.id)).toEqual(row); // kept as recorded
    const ids = after.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(result.steps);
    // every model family the uninterrupted run tested, each tested once
    expect(modelTemplates(after).sort()).toEqual(modelTemplates(rows).sort());
    expect(after.at(-1)).toMatchObject({ template: "final", verdict: "done" });
  }, 240_000);
});
