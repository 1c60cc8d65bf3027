/**
 * report.md: the question and its answer, the data (and what was excluded, and why), the
 * validation, every step, what helped, the best pipeline, plots, what drives the target,
 * and the experiment tree. Every number is one a step recorded; none is recomputed here.
 */
import { writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import type { StepSummary } from "../messages.ts";
import { isObject, specAlong } from "../templates/run.ts";
import { type AnswerFacts, type ProfileRecord, ReportInput, type ReportInputData } from "./input.ts";
import { tree } from "./tree.ts";

export const REPORT_NAME = "report.md";

/** Write `<runDir>/report.md`; returns its path. */
export async function writeReport(runDir: string, data: ReportInputData): Promise<string> {
  const path = join(runDir, REPORT_NAME);
  await writeFile(path, reportText(ReportInput.parse(data)));
  return path;
}

export function reportText(r: ReportInput): string {
  const question = r.question || `How well can \`${r.target}\` be predicted, and from what?`;
  const sections: [string, string][] = [
    ["Answer", r.answer],
    ["Data", dataSection(r)],
    ["Validation", validationText(r)],
    ["Every step", stepsTable(r.steps)],
    ["What helped", helped(r.steps)],
    ["Best pipeline", bestSection(r)],
    ["Plots", r.plots.map((p) => `![${p.title}](${p.path})`).join("\n\n") || "No plots were made."],
    [`What drives \`${r.target}\``, driversSection(r)],
    ["The experiment tree", treeSection(r.steps)],
  ];
  return [
    `# DSAssist report: ${basename(r.dataset.path)}`,
    `**Question.** ${question}`,
    ...sections.map(([title, body]) => `## ${title}\n\n${body}`),
    `Stopped: ${r.stopReason}. Status ${r.result.status}, elapsed ${r.result.elapsedS.toFixed(1)}s. ` +
      "Per-step notes are in `steps/`, the winning path in `notebook.ipynb`.",
  ]
    .join("\n\n")
    .concat("\n");
}

/** The offline answer: the best model's score against the baseline, and what drives the target. */
export function answerFor(r: AnswerFacts): string {
  const best = r.steps.find((s) => s.id === r.bestStep);
  if (!best?.metrics) return `No model could be validated (${r.stopReason}); see the steps below.`;
  const m = best.metrics;
  const baseline = baselineOf(r.steps)?.metrics;
  const versus = baseline ? ` against ${baseline.mean.toFixed(4)} for a dummy baseline` : "";
  const lines = [
    `The best pipeline (step ${best.id}, ${modelOf(r.steps, best.id)}) reaches ${m.metric} ` +
      `${m.mean.toFixed(4)} ± ${m.std.toFixed(4)} in cross-validation${versus}.`,
  ];
  const drivers = r.drivers?.columns ?? [];
  if (drivers.length > 0) {
    lines.push(`What drives \`${r.target}\` most, by permutation importance on held-out folds:`);
    for (const d of drivers.slice(0, 5)) {
      lines.push(`- **${d.column}** (importance ${d.importance.toFixed(4)}): ${d.effect}`);
    }
  }
  return lines.join("\n");
}

function baselineOf(steps: StepSummary[]): StepSummary | undefined {
  return steps.find((s) => s.kind === "baseline" && s.metrics);
}

/**
 * The model of a step's pipeline: the `change` params along its chain of parents, later
 * ones overriding earlier ones (the pipeline the step was judged with).
 */
export function modelOf(steps: StepSummary[], id: number): string {
  const spec = specAlong(steps, id);
  const params = isObject(spec.params) ? spec.params : {};
  const model = typeof spec.model === "string" ? spec.model : "?";
  return Object.keys(params).length > 0 ? `${model} ${JSON.stringify(params)}` : model;
}

// ---- sections --------------------------------------------------------------------------

function dataSection(r: ReportInput): string {
  const p = r.profile;
  if (!p) return "The profile step did not complete.";
  const excluded = Object.entries(p.suspicious);
  const lines = [
    `\`${r.dataset.path}\`: ${p.rows} rows, ${Object.keys(p.columns).length} feature columns, ` +
      `sha256 \`${r.dataset.sha256.slice(0, 12)}\`. Task: ${r.task}, scored by ${r.metric}.`,
    "",
    ...(excluded.length > 0
      ? ["### Excluded before modelling", "", ...excluded.map(([col, why]) => `- ${exclusion(col, why)}`), ""]
      : []),
    `Target \`${r.target}\`: ${targetText(p.target)}`,
    "",
    "| column | kind | dtype | missing | distinct | used |",
    "| --- | --- | --- | --- | --- | --- |",
    ...Object.entries(p.columns).map(
      ([col, c]) =>
        `| ${cell(col)} | ${c.kind} | ${c.dtype} | ${(c.missing * 100).toFixed(1)}% | ${c.unique} | ` +
        `${col in p.suspicious ? "excluded" : "yes"} |`,
    ),
  ];
  return lines.join("\n");
}

/** What a careful analyst says: the column, why it went, and the evidence, as the profile found it. */
const BECAUSE: Record<string, string> = {
  leak: "it leaks the target",
  duplicate: "it duplicates another column",
  identifier: "it identifies rows",
  constant: "it is constant",
};

export function exclusion(column: string, evidence: string): string {
  const split = evidence.indexOf(": ");
  const because = split > 0 ? BECAUSE[evidence.slice(0, split)] : undefined;
  const reason = because ? `${because}: ${evidence.slice(split + 2)}` : `the profile flagged it: ${evidence}`;
  return `I excluded **\`${column}\`** because ${reason}.`;
}

function targetText(target: ProfileRecord["target"]): string {
  if ("classes" in target) {
    const total = Object.values(target.classes).reduce((a, b) => a + b, 0);
    return Object.entries(target.classes)
      .map(([k, v]) => `${k}: ${v} (${Math.round((100 * v) / total)}%)`)
      .join(", ");
  }
  const { mean, std, min, max, skew } = target;
  return `mean ${g4(mean)}, std ${g4(std)}, range ${g4(min)} to ${g4(max)}, skew ${skew}`;
}

/** Four significant digits without trailing zeros, like Python's `:.4g`. */
function g4(x: number): string {
  return String(Number(x.toPrecision(4)));
}

function validationText(r: ReportInput): string {
  const v = r.validation;
  if (!v) return "No validation scheme was set up.";
  const column = v.column ? ` on \`${v.column}\`` : "";
  return `${v.scheme} cross-validation${column}, ${v.n_splits} folds (${v.why}); every comparison uses these folds.`;
}

function stepsTable(steps: StepSummary[]): string {
  const rows = steps.map((s) => {
    const score = s.metrics ? `${s.metrics.mean.toFixed(4)} ± ${s.metrics.std.toFixed(4)}` : "";
    const fixes = s.attempts > 1 && s.verdict !== "failed" ? ` (fixed after ${s.attempts - 1})` : "";
    const error = s.verdict === "failed" && s.error ? `: ${cell(s.error.split("\n")[0]!.slice(0, 120))}` : "";
    const parent = s.parent === null ? "" : String(s.parent);
    return `| ${s.id} | ${parent} | ${cell(s.hypothesis)} | ${s.verdict}${fixes}${error} | ${score} | ${signed(s.gain)} | ${s.durationS.toFixed(1)}s |`;
  });
  return [
    "| step | parent | hypothesis | verdict | score | gain | time |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows,
  ].join("\n");
}

function helped(steps: StepSummary[]): string {
  const kept = steps.filter((s) => s.verdict === "accepted" && s.gain !== null && s.metrics);
  if (kept.length === 0) return "No hypothesis beat the baseline chain beyond noise.";
  return kept
    .map((s) => `- step ${s.id}, ${s.hypothesis}: ${signed(s.gain)} ${s.metrics!.metric}`)
    .join("\n");
}

function bestSection(r: ReportInput): string {
  const best = r.steps.find((s) => s.id === r.bestStep);
  if (!best?.metrics) return "None.";
  const m = best.metrics;
  const folds = m.folds.map((v) => v.toFixed(4)).join(", ");
  const also = Object.entries(m.secondary).map(([k, v]) => `${k} ${v.toFixed(4)}`);
  const lines = [
    `Step ${best.id}: \`${modelOf(r.steps, best.id)}\` with the kept feature changes.`,
    "",
    `- ${m.metric}: **${m.mean.toFixed(4)} ± ${m.std.toFixed(4)}** (folds: ${folds})`,
    ...(also.length > 0 ? [`- also: ${also.join(", ")}`] : []),
  ];
  if (r.path.length > 0) {
    lines.push("", "The winning path, cell by cell as `notebook.ipynb` replays it:", "");
    lines.push(
      ...r.path.map(({ step }, i) => `${i + 1}. step ${step.id} (${step.templateId}): ${step.hypothesis}`),
    );
  }
  if (r.path.some(({ step }) => step.kind === "final")) {
    lines.push(
      "",
      "Saved as `model.pkl`; apply it with `dsassist predict RUN_FOLDER new.csv -o predictions.csv`.",
    );
  }
  return lines.join("\n");
}

function driversSection(r: ReportInput): string {
  const drivers = r.drivers?.columns ?? [];
  if (drivers.length === 0) return "Not measured: the final refit did not publish its drivers.";
  return [
    "Permutation importance of each column on held-out folds (the score lost when it is shuffled):",
    "",
    "| column | importance | effect |",
    "| --- | --- | --- |",
    ...drivers.map((d) => `| ${cell(d.column)} | ${d.importance.toFixed(4)} | ${cell(d.effect)} |`),
  ].join("\n");
}

function treeSection(steps: StepSummary[]): string {
  const intro = "Each step builds on the kernel state of its parent; judged steps on the best step so far.";
  return `${intro}\n\n\`\`\`\n${tree(steps)}\n\`\`\``;
}

function signed(x: number | null): string {
  return x === null ? "" : `${x >= 0 ? "+" : ""}${x.toFixed(4)}`;
}

/** Text inside a table cell: a pipe or a newline would end the cell. */
function cell(text: string): string {
  return text.replaceAll("|", "\\|").replaceAll("\n", " ");
}
