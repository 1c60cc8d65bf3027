/**
 * The evaluator: did the cell run, what did it score, and is the change worth keeping?
 *
 * Offline policy: keep a hypothesis only if its gain over its parent beats the fold spread.
 * On the same folds, the gain must be at least one standard error of the paired per-fold
 * differences. A positive gain short of that is a near-tie: when the budget allows, both
 * pipelines are scored again on freshly shuffled folds and the pooled differences decide.
 *
 * A model-backed evaluator extends it: it judges open-question outputs and writes the final
 * answer, and leaves scores to `evaluate`.
 */
import {
  type Agent,
  type Answer,
  type EvaluateRequest,
  type Evaluation,
  type Execution,
  gainOver,
  type Metrics,
  MetricsRecord,
  type Recheck,
  type ReplyOf,
  type RequestOf,
  records,
} from "../messages.ts";
import { fixed, signed } from "./format.ts";

export class Evaluator implements Agent<"evaluator"> {
  /** how many paired standard errors a gain must reach to be kept */
  readonly noiseFactor: number = 1.0;

  async handle(request: RequestOf<"evaluator">): Promise<ReplyOf<"evaluator">> {
    return request.kind === "answer" ? ({ text: request.summary } satisfies Answer) : this.evaluate(request);
  }

  evaluate(request: EvaluateRequest): Evaluation {
    const execution = request.execution;
    if (!execution.ok) {
      const verdict = request.attempt < request.maxAttempts ? "retry" : "failed";
      return { verdict, metrics: null, gain: null, feedback: feedbackFor(execution) };
    }
    if (!request.task.judged)
      return { verdict: "done", metrics: null, gain: null, feedback: "ran without error" };
    const published = records(execution, "metrics").at(-1);
    if (published === undefined) {
      return failed("the cell ran but published no metrics record: call evaluate(...)");
    }
    const parsed = MetricsRecord.safeParse(published);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return failed(`the cell's metrics record is malformed: ${issue?.path.join(".")}: ${issue?.message}`);
    }
    const metrics = parsed.data;
    if (request.parent === null) {
      return { verdict: "accepted", metrics, gain: null, feedback: `reference score ${describe(metrics)}` };
    }
    return this.judge(metrics, request.parent, request.canRecheck, request.recheck);
  }

  judge(metrics: Metrics, parent: Metrics, canRecheck = false, recheck: Recheck | null = null): Evaluation {
    let diffs = pairedDifferences(metrics.folds, parent.folds, metrics.higherIsBetter);
    const gain = gainOver(metrics, parent);
    let noise = standardError(diffs);
    let summary = `${describe(metrics)} vs ${fixed(parent.mean, 4)}: gain ${signed(gain, 4)} (paired SE ${fixed(noise, 4)})`;
    const nearTie = 0 < gain && gain < this.noiseFactor * noise;
    if (nearTie && recheck === null && canRecheck) {
      return { verdict: "recheck", metrics, gain, feedback: `${summary}, near-tie: rechecking` };
    }
    let kept: boolean;
    if (nearTie && recheck !== null && recheck.candidate.length > 0) {
      diffs = [...diffs, ...pairedDifferences(recheck.candidate, recheck.parent, metrics.higherIsBetter)];
      const pooled = mean(diffs);
      noise = standardError(diffs);
      kept = pooled > 0 && pooled >= this.noiseFactor * noise;
      summary += `; near-tie rechecked on ${diffs.length} folds: gain ${signed(pooled, 4)} (SE ${fixed(noise, 4)})`;
    } else {
      kept = gain > 0 && !nearTie;
      if (recheck?.why) summary += `; not rechecked: ${recheck.why}`;
    }
    const why = kept ? "kept" : gain <= 0 ? "worse" : "within noise: not kept";
    return { verdict: kept ? "accepted" : "rejected", metrics, gain, feedback: `${summary}, ${why}` };
  }
}

/** Per-fold gains of `a` over `b` (the folds are shared), positive when `a` is better; extra folds are ignored. */
export function pairedDifferences(
  a: readonly number[],
  b: readonly number[],
  higherIsBetter: boolean,
): number[] {
  const sign = higherIsBetter ? 1 : -1;
  return a.slice(0, b.length).map((x, i) => sign * (x - b[i]!));
}

/** Standard error of the mean of `values` (0 for fewer than two). */
export function standardError(values: readonly number[]): number {
  if (values.length < 2) return 0;
  const m = mean(values);
  const variance = values.reduce((sum, d) => sum + (d - m) ** 2, 0) / (values.length - 1);
  return Math.sqrt(variance / values.length);
}

// the line boundaries of Python's str.splitlines
// biome-ignore lint/suspicious/noControlCharactersInRegex: Python splits lines at these separators too
const LINE_BREAK = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;

/** Targeted feedback: the error, and the line of the cell where it was raised. */
export function feedbackFor(execution: Execution): string {
  const error = execution.error;
  if (!error) return "";
  const cell = error.traceback.filter((entry) => entry.trimStart().startsWith("Cell In")).at(-1);
  const arrow = cell?.split(LINE_BREAK).find((line) => line.startsWith("---->")) ?? "";
  const text = `${error.name}: ${error.value}`;
  const match = /^---->\s*(\d+)\s?(.*)/.exec(arrow);
  return match ? `${text} (line ${match[1]}: ${match[2]!.trim()})` : text;
}

function mean(values: readonly number[]): number {
  return values.reduce((sum, v) => sum + v, 0) / values.length;
}

function failed(feedback: string): Evaluation {
  return { verdict: "failed", metrics: null, gain: null, feedback };
}

function describe(m: Metrics): string {
  return `${m.metric} ${fixed(m.mean, 4)} ± ${fixed(m.std, 4)}`;
}
