/**
 * The winning path as a Jupyter notebook (nbformat 4.5) that re-executes top to bottom to
 * the reported score: a heading, then for each kept step a note and its cell.
 */
import { writeFile } from "node:fs/promises";
import type { StepSummary } from "../messages.ts";

/** One step of the winning path and the cell that replays it. */
export interface PathCell {
  step: StepSummary;
  code: string;
}

interface NotebookCell {
  cell_type: "markdown" | "code";
  id: string;
  metadata: Record<string, never>;
  source: string[];
  outputs?: [];
  execution_count?: null;
}

/** nbformat stores text as lines, each but the last ending in its newline. */
export function sourceLines(text: string): string[] {
  return text === "" ? [] : text.split(/(?<=\n)/);
}

function markdown(id: string, text: string): NotebookCell {
  return { cell_type: "markdown", id, metadata: {}, source: sourceLines(text) };
}

function code(id: string, text: string): NotebookCell {
  return {
    cell_type: "code",
    id,
    metadata: {},
    source: sourceLines(text),
    outputs: [],
    execution_count: null,
  };
}

function heading(step: StepSummary): string {
  const m = step.metrics;
  const score = m ? ` — ${m.metric} ${m.mean.toFixed(4)} ± ${m.std.toFixed(4)}` : "";
  return `**Step ${step.id}**: ${step.hypothesis}${score}`;
}

export function notebook(cells: PathCell[], title: string): object {
  const intro = `# ${title}\n\nThe winning path of a DSAssist run: each cell is one kept step.`;
  return {
    nbformat: 4,
    nbformat_minor: 5,
    metadata: {
      kernelspec: { name: "python3", display_name: "Python 3", language: "python" },
      language_info: { name: "python" },
    },
    cells: [
      markdown("title", intro),
      // a step appears once on a path, so its id makes the cell ids unique and stable
      ...cells.flatMap(({ step, code: text }) => [
        markdown(`step-${step.id}-note`, heading(step)),
        code(`step-${step.id}`, text),
      ]),
    ],
  };
}

export async function writeNotebook(path: string, cells: PathCell[], title: string): Promise<void> {
  await writeFile(path, `${JSON.stringify(notebook(cells, title), null, 1)}\n`);
}
