/** The run's memory: which step leads, and the chain of cells a branch replays. */
import { describe, expect, it } from "vitest";
import { ACCEPT_CELL, Loop } from "../../core/src/loop.ts";
import type { Execution, StepSummary, Verdict } from "../../core/src/messages.ts";
import { RunOptions } from "../../core/src/messages.ts";
import { metrics, OPTIONS } from "./templates/fixtures.ts";

const ran: Execution = { ok: true, stdout: "", stderr: "", outputs: [], durationS: 0 };

function step(
  id: number,
  parent: number | null,
  kind: string,
  verdict: Verdict,
  score: number | null,
): StepSummary {
  return {
    id,
    parent,
    templateId: kind,
    kind,
    hypothesis: kind,
    params: {},
    verdict,
    metrics: score === null ? null : metrics(score),
    gain: null,
    durationS: 1,
    attempts: 1,
    error: null,
    lesson: "",
  };
}

function loopWith(...steps: StepSummary[]): Loop {
  const loop = Loop.fresh(RunOptions.parse(OPTIONS), 60, 40);
  for (const s of steps) loop.add(s, ran, `cell ${s.id}`);
  return loop;
}

describe("the loop's memory", () => {
  const setup = [step(0, null, "setup", "done", null), step(1, 0, "baseline", "accepted", 0.5)];

  it("lets the model family with the best score lead, whatever its turn", () => {
    const loop = loopWith(
      ...setup,
      step(2, 1, "model", "accepted", 0.8),
      step(3, 1, "model", "accepted", 0.85),
    );
    expect(loop.view.bestStep).toBe(3);
    const later = loopWith(
      ...setup,
      step(2, 1, "model", "accepted", 0.85),
      step(3, 1, "model", "accepted", 0.8),
    );
    expect(later.view.bestStep).toBe(2);
  });

  it("moves the lead to an accepted child of the best step, and never to a rejected step", () => {
    const loop = loopWith(
      ...setup,
      step(2, 1, "model", "accepted", 0.8),
      step(3, 2, "feature", "rejected", 0.9),
    );
    expect(loop.view.bestStep).toBe(2);
    loop.add(step(4, 2, "feature", "accepted", 0.79), ran, "cell 4"); // its parent was best: it leads
    expect(loop.view.bestStep).toBe(4);
  });

  it("replays the kept chain to a step, accepted cells ending with the accept line", () => {
    const loop = loopWith(
      ...setup,
      step(2, 1, "model", "accepted", 0.8),
      step(3, 2, "feature", "rejected", 0.9),
    );
    expect(loop.chain(3).map((link) => link.code)).toEqual([
      "cell 0",
      `cell 1\n${ACCEPT_CELL}`,
      `cell 2\n${ACCEPT_CELL}`,
    ]);
  });
});
