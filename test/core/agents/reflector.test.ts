/**
 * The reflector through its message interface: ReflectRequest in, Reflection out
 * (tests/agents/test_reflector.py). reflector.expected.json holds what the Python Reflector
 * wrote for the same inputs: the notes must read the same.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { lessonFor, Reflector } from "../../../core/src/agents/reflector.ts";
import {
  Attempt,
  type Metrics,
  type Reflection,
  StepSummary,
  type Verdict,
} from "../../../core/src/messages.ts";

const EXPECTED = JSON.parse(
  readFileSync(new URL("reflector.expected.json", import.meta.url), "utf8"),
) as Record<string, { lesson: string; note?: string }>;

const PARENT_METRICS: Metrics = {
  metric: "roc_auc",
  higherIsBetter: true,
  folds: [0.8, 0.8, 0.8],
  mean: 0.8,
  std: 0,
  secondary: {},
  fitTimeS: 0,
  foldJobs: 1,
};
const STEP_METRICS: Metrics = { ...PARENT_METRICS, folds: [0.84, 0.85, 0.86], mean: 0.85, std: 0.0082 };

const BROKEN = "candidate_spec = {**spec, **{'model': 'linear'}}\nqt = QuantileTransformer()";
const FIXED = `from sklearn.preprocessing import QuantileTransformer\n${BROKEN}`;

function step(
  verdict: Verdict = "accepted",
  metrics: Metrics | null = STEP_METRICS,
  gain: number | null = 0.05,
  error: string | null = null,
): StepSummary {
  return StepSummary.parse({
    id: 6,
    parent: 4,
    templateId: "linear",
    kind: "model",
    hypothesis: "A regularised linear model beats the best so far",
    params: { change: { model: "linear", params: {} } },
    verdict,
    metrics,
    gain,
    durationS: 1.25,
    attempts: 2,
    error,
  });
}

const PARENT = StepSummary.parse({
  id: 4,
  parent: 3,
  templateId: "baseline",
  kind: "baseline",
  hypothesis: "A dummy baseline",
  verdict: "accepted",
  metrics: PARENT_METRICS,
});

function attempts(): Attempt[] {
  return [
    Attempt.parse({
      code: BROKEN,
      execution: {
        ok: false,
        error: { name: "NameError", value: "name 'QuantileTransformer' is not defined" },
      },
      feedback: "NameError: name 'QuantileTransformer' is not defined",
    }),
    Attempt.parse({
      code: FIXED,
      execution: {
        ok: true,
        stdout: "roc_auc: 0.8500 ± 0.0082 over 3 folds\n",
        outputs: [{ mime: "image/png", path: "artifacts/abc123.png" }],
      },
      feedback: "kept",
      fixRule: "add-missing-import",
    }),
  ];
}

const reflect = (
  s: StepSummary,
  tries: Attempt[],
  parent: StepSummary | null = PARENT,
): Promise<Reflection> => new Reflector().handle({ step: s, attempts: tries, parent });

describe("the lesson", () => {
  it("of an accepted step names its fixes, score, gain and parent", async () => {
    const { lesson } = await reflect(step(), attempts());
    expect(lesson).toBe(
      "linear helped after 1 fix(es) (add-missing-import): roc_auc 0.8500 ± 0.0082, +0.0500 over step 4",
    );
  });

  it("of a rejected step says the parent is kept, and names no fix when none was made", async () => {
    const clean = { ...attempts()[1]!, fixRule: "" };
    const { lesson } = await reflect(step("rejected", STEP_METRICS, -0.02), [clean]);
    expect(lesson).toBe("linear did not help: roc_auc 0.8500 ± 0.0082, -0.0200 vs step 4; kept step 4");
  });

  it("of a failed step gives the error", async () => {
    const { lesson } = await reflect(step("failed", null, null, "KeyError: 'Agee'"), attempts().slice(0, 1));
    expect(lesson).toBe("linear failed: KeyError: 'Agee'; the run went on without it");
  });

  it("without a parent is the reference", async () => {
    const { lesson } = await reflect(step("accepted", STEP_METRICS, null), attempts().slice(1), null);
    expect(lesson).toBe(
      "linear: roc_auc 0.8500 ± 0.0082 is the reference after 1 fix(es) (add-missing-import)",
    );
  });

  it("of a step with no score says it is done", () => {
    expect(lessonFor(step("done", null, null), null, attempts())).toBe(EXPECTED.done!.lesson);
    expect(EXPECTED.done!.lesson).toBe("linear done after 1 fix(es) (add-missing-import)");
  });
});

describe("the note", () => {
  it("has the code of every attempt and the outcome", async () => {
    const tries = attempts();
    const { note, lesson } = await reflect(step(), tries);
    expect(note.startsWith("# Step 6: A regularised linear model beats the best so far")).toBe(true);
    for (const attempt of tries) expect(note).toContain(`\`\`\`python\n${attempt.code}\n\`\`\``);
    expect(note.indexOf("## Attempt 1")).toBeLessThan(note.indexOf("## Attempt 2 (fix: add-missing-import)"));
    expect(note).toContain("Error: `NameError: name 'QuantileTransformer' is not defined`"); // the failure
    expect(note).toContain("roc_auc: 0.8500 ± 0.0082 over 3 folds"); // the output
    expect(note).toContain("![output](../artifacts/abc123.png)"); // plot, relative to steps/
    expect(note).toContain("(folds: 0.8400, 0.8500, 0.8600)");
    expect(note).toContain("- gain over parent: +0.0500\n- judgement: kept");
    expect(note).toContain("**accepted**");
    expect(note).toContain("attempts: 2");
    expect(note).toContain(`**Lesson.** ${lesson}`);
  });

  it.each([
    ["accepted", () => reflect(step(), attempts())],
    ["rejected", () => reflect(step("rejected", STEP_METRICS, -0.02), [{ ...attempts()[1]!, fixRule: "" }])],
    ["failed", () => reflect(step("failed", null, null, "KeyError: 'Agee'"), attempts().slice(0, 1))],
    ["reference", () => reflect(step("accepted", STEP_METRICS, null), attempts().slice(1), null)],
  ])("of a%s step reads exactly as the Python version's", async (kind, made) => {
    expect(await made()).toEqual(EXPECTED[kind]);
  });

  it("clips a long output, and rounds the time as Python does", async () => {
    // Python wrote 0.125 s as "0.12s" (an exact tie goes to the even digit) and kept 4000 characters
    const chatty = Attempt.parse({
      code: "print('x' * 5000)\n\n",
      execution: { ok: true, stdout: `  ${"é".repeat(4100)}\n` },
    });
    const s = StepSummary.parse({ ...step("done", null, null), parent: null, durationS: 0.125 });
    const { note } = await reflect(s, [chatty], null);
    expect(note).toContain(
      "- template: `linear` (model); parent: -\n- verdict: **done**; time: 0.12s; attempts: 1",
    );
    expect(note).toContain("```python\nprint('x' * 5000)\n```");
    expect(note.endsWith(`\`\`\`\n${"é".repeat(4000)}\n...\n\`\`\`\n`)).toBe(true);
    expect(note.length).toBe(4241); // the length of the Python version's note
  });
});
