/**
 * A run stopped at any point and resumed gives what an uninterrupted run gives: kill -9 of
 * the whole process group at three points, and Ctrl-C. Budget and step limit are large
 * enough that the step limit alone decides which steps run.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { cypher, dsassist, example, resultOf, signalAfter, stepRows, tmp } from "./cli.ts";

const STEPS = 14;
const runArgs = (out: string) => [
  "run",
  example("titanic"),
  "--target",
  "survived",
  "--budget",
  "5m",
  "--max-steps",
  String(STEPS),
  "--seed",
  "0",
  "--out",
  out,
];
const runStatus = async (out: string) =>
  (await cypher(out, "MATCH (r:Run) RETURN r.status AS status"))[0]!.status;

describe("resume", () => {
  const reference = join(tmp(), "reference");
  let referenceSteps: Awaited<ReturnType<typeof stepRows>> = [];

  beforeAll(async () => {
    const ran = await dsassist(...runArgs(reference));
    expect(ran.code, ran.stderr).toBe(0);
    referenceSteps = await stepRows(reference);
    expect(referenceSteps.map((s) => s.id)).toEqual([...Array(STEPS).keys()]);
    expect(referenceSteps.at(-1)!.template).toBe("final");
  }, 120_000);

  /** Resume `out` and check it ends as the reference run did: every step once, same scores. */
  async function resumesToTheReference(out: string) {
    const before = await stepRows(out);
    expect(before).toEqual(referenceSteps.slice(0, before.length)); // what was recorded is kept as it was
    const ran = await dsassist("resume", out);
    expect(ran.code, ran.stderr).toBe(0);
    expect(await stepRows(out)).toEqual(referenceSteps); // nothing lost, nothing repeated, same scores
    const result = resultOf(out);
    expect(result.status).toBe("finished");
    expect(result.steps).toBe(STEPS);
    expect(result.best_score).toBe(resultOf(reference).best_score);
    expect(await runStatus(out)).toBe("finished");
    const report = readFileSync(join(out, "report.md"), "utf8");
    for (const s of referenceSteps) expect(report).toContain(`| ${s.id} |`);
    expect(existsSync(join(out, "model.pkl"))).toBe(true);
    return before;
  }

  // during set-up (one step recorded), mid-run, and after the last modelling step (before the refit)
  it.each([1, 6, STEPS - 1])(
    "after a kill -9 with %i steps recorded, finishes as the uninterrupted run",
    async (steps) => {
      const out = join(tmp(), "run");
      await signalAfter(runArgs(out), out, steps, "SIGKILL");
      const before = await resumesToTheReference(out);
      // the note comes just before the record: the step of the last note may be redone
      expect(before.length).toBeGreaterThanOrEqual(steps - 1);
      expect(before.length).toBeLessThan(STEPS);
    },
    240_000,
  );

  it("stops on Ctrl-C with exit 130 and an interrupted report, and a resume finishes it", async () => {
    const out = join(tmp(), "run");
    const code = await signalAfter(runArgs(out), out, 6, "SIGINT");
    expect(code).toBe(130);
    expect(resultOf(out).status).toBe("interrupted");
    expect(await runStatus(out)).toBe("interrupted");
    expect(readFileSync(join(out, "report.md"), "utf8")).toContain("Status interrupted");
    await resumesToTheReference(out);
  }, 240_000);

  it("refuses to resume a finished run, in one line", async () => {
    const ran = await dsassist("resume", reference);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim()).toMatch(/^error: .*already finished/);
    expect(ran.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("refuses a folder that holds no run, in one line", async () => {
    const folder = tmp();
    const ran = await dsassist("resume", folder);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim()).toMatch(/^error: .*/);
    expect(ran.stderr.trim().split("\n")).toHaveLength(1);
    expect(existsSync(join(folder, "provenance.kuzu"))).toBe(false); // and creates none
  });
});
