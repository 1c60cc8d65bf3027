/** The experiment tree as text: every step under the step it built on. */
import type { StepSummary, Verdict } from "../messages.ts";

const MARK: Partial<Record<Verdict, string>> = {
  accepted: "kept",
  rejected: "dropped",
  failed: "failed",
  done: "done",
};

export function stepLabel(s: StepSummary): string {
  const score = s.metrics ? ` ${s.metrics.metric} ${s.metrics.mean.toFixed(4)}` : "";
  return `${s.id} ${s.templateId}${score} [${MARK[s.verdict] ?? s.verdict}]`;
}

/** Children by parent id; a step whose parent is unknown is a root (key null). */
function childrenOf(steps: StepSummary[]): Map<number | null, StepSummary[]> {
  const known = new Set(steps.map((s) => s.id));
  const children = new Map<number | null, StepSummary[]>();
  for (const s of steps) {
    const parent = s.parent !== null && known.has(s.parent) ? s.parent : null;
    children.set(parent, [...(children.get(parent) ?? []), s]);
  }
  return children;
}

export function tree(steps: StepSummary[]): string {
  const children = childrenOf(steps);
  const lines: string[] = [];
  const walk = (node: StepSummary, prefix: string, last: boolean, root: boolean): void => {
    lines.push(root ? stepLabel(node) : `${prefix}${last ? "└─ " : "├─ "}${stepLabel(node)}`);
    const below = children.get(node.id) ?? [];
    const inner = root ? "" : prefix + (last ? "   " : "│  ");
    for (const [i, child] of below.entries()) walk(child, inner, i === below.length - 1, false);
  };
  for (const root of children.get(null) ?? []) walk(root, "", true, true);
  return lines.join("\n");
}
