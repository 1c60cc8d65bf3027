/**
 * The reflector: what one step taught, as a lesson and a Markdown note for the run folder.
 *
 * Offline policy: a factual lesson from the verdict, gain and fixes. A model-backed reflector
 * extends it and words the lessons of open-question and failed steps itself; `lessonFor` and
 * `noteFor` are what it keeps.
 */
import type { Agent, Attempt, Metrics, Reflection, ReflectRequest, StepSummary } from "../messages.ts";
import { fixed, signed } from "./format.ts";

/** Longest output quoted in a note, in characters. */
const OUTPUT_LIMIT = 4000;

export class Reflector implements Agent<"reflector"> {
  async handle(request: ReflectRequest): Promise<Reflection> {
    const lesson = lessonFor(request.step, request.parent, request.attempts);
    return { lesson, note: noteFor(request.step, request.attempts, lesson) };
  }
}

export function lessonFor(
  step: StepSummary,
  parent: StepSummary | null,
  attempts: readonly Attempt[],
): string {
  const fixes = attempts.flatMap((a) => (a.fixRule ? [a.fixRule] : []));
  const after = fixes.length > 0 ? ` after ${fixes.length} fix(es) (${fixes.join(", ")})` : "";
  const id = step.templateId;
  if (step.verdict === "failed")
    return `${id} failed${after}: ${step.error ?? "None"}; the run went on without it`;
  if (step.metrics === null) return `${id} done${after}`;
  const score = scoreOf(step.metrics);
  if (!parent || parent.metrics === null || step.gain === null)
    return `${id}: ${score} is the reference${after}`;
  const gain = signed(step.gain, 4);
  if (step.verdict === "accepted") return `${id} helped${after}: ${score}, ${gain} over step ${parent.id}`;
  return `${id} did not help${after}: ${score}, ${gain} vs step ${parent.id}; kept step ${parent.id}`;
}

export function noteFor(step: StepSummary, attempts: readonly Attempt[], lesson: string): string {
  const lines = [
    `# Step ${step.id}: ${step.hypothesis}`,
    "",
    `- template: \`${step.templateId}\` (${step.kind}); parent: ${step.parent ?? "-"}`,
    `- verdict: **${step.verdict}**; time: ${fixed(step.durationS, 2)}s; attempts: ${attempts.length}`,
  ];
  const m = step.metrics;
  if (m !== null) {
    const folds = m.folds.map((v) => fixed(v, 4)).join(", ");
    lines.push(`- ${m.metric}: ${fixed(m.mean, 4)} ± ${fixed(m.std, 4)} (folds: ${folds})`);
    if (step.gain !== null) {
      lines.push(
        `- gain over parent: ${signed(step.gain, 4)}`,
        `- judgement: ${attempts.at(-1)?.feedback ?? ""}`,
      );
    }
  }
  lines.push("", `**Lesson.** ${lesson}`, "");
  attempts.forEach((attempt, i) => {
    lines.push(...attemptSection(attempt, i + 1));
  });
  return lines.join("\n");
}

function attemptSection(attempt: Attempt, number: number): string[] {
  const fix = attempt.fixRule ? ` (fix: ${attempt.fixRule})` : "";
  const lines = [`## Attempt ${number}${fix}`, "", "```python", attempt.code.trimEnd(), "```", ""];
  const out = attempt.execution.stdout.trim();
  if (out) lines.push("Output:", "", "```", clip(out), "```", "");
  if (attempt.execution.error) lines.push(`Error: \`${attempt.feedback}\``, "");
  for (const o of attempt.execution.outputs) if (o.path) lines.push(`![output](../${o.path})`, "");
  return lines;
}

function scoreOf(m: Metrics): string {
  return `${m.metric} ${fixed(m.mean, 4)} ± ${fixed(m.std, 4)}`;
}

/** The first OUTPUT_LIMIT characters (code points, as Python counts them). */
function clip(text: string): string {
  const chars = Array.from(text);
  return chars.length <= OUTPUT_LIMIT ? text : `${chars.slice(0, OUTPUT_LIMIT).join("")}\n...`;
}
