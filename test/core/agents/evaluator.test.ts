/**
 * The evaluator through its message interface: EvaluateRequest in, Evaluation out
 * (tests/agents/test_evaluator.py). The expected feedback strings are what the Python
 * Evaluator wrote for the same inputs.
 */
import { describe, expect, it } from "vitest";
import {
  Evaluator,
  feedbackFor,
  pairedDifferences,
  standardError,
} from "../../../core/src/agents/evaluator.ts";
import {
  type Answer,
  type ErrorInfo,
  EvaluateRequest,
  type Evaluation,
  type Execution,
  type Metrics,
  type Recheck,
} from "../../../core/src/messages.ts";

const METRICS_MIME = "application/vnd.dsassist.metrics+json";

function metrics(folds: number[], metric = "roc_auc", higherIsBetter = true): Metrics {
  const mean = folds.reduce((a, b) => a + b, 0) / folds.length;
  const std = Math.sqrt(folds.reduce((a, f) => a + (f - mean) ** 2, 0) / folds.length);
  return { metric, higherIsBetter, folds, mean, std, secondary: {}, fitTimeS: 0, foldJobs: 1 };
}

/** The kernel's record of `m`, in the toolkit's snake_case. */
function record(m: Metrics): Record<string, unknown> {
  return { metric: m.metric, higher_is_better: m.higherIsBetter, folds: m.folds, mean: m.mean, std: m.std };
}

function ran(published: Metrics[] = [], stdout = ""): Execution {
  const outputs = [
    { mime: "text/plain", text: "a repr" },
    ...published.map((m) => ({ mime: METRICS_MIME, data: record(m) })),
  ];
  return { ok: true, stdout, stderr: "", outputs, durationS: 0.5 };
}

// recorded from a real ipykernel (ANSI colours stripped, as the kernel client does)
const KERNEL_ERROR: ErrorInfo = {
  name: "KeyError",
  value: "'Agee'",
  traceback: [
    "---------------------------------------------------------------------------",
    "KeyError                                  Traceback (most recent call last)",
    "File /tmp/kenv/v/lib/python3.11/site-packages/pandas/core/indexes/base.py:3816, in Index.get_loc(self, key)\n   3815 try:\n-> 3816     return self._engine.get_loc(casted_key)\n   3817 except KeyError as err:\n",
    "File pandas/_libs/index.pyx:172, in pandas._libs.index.IndexEngine.get_loc()\n--> 172 'Could not get source, probably due dynamically evaluated source code.'\n",
    "KeyError: 'Agee'",
    "\nThe above exception was the direct cause of the following exception:\n",
    "KeyError                                  Traceback (most recent call last)",
    "Cell In[5], line 3\n      1 x = 1\n      2 df = passengers\n----> 3 df['Agee'].mean()\n",
    "File /tmp/kenv/v/lib/python3.11/site-packages/pandas/core/frame.py:4330, in DataFrame.__getitem__(self, key)\n   4326 \n-> 4330             indexer = self.columns.get_loc(key)\n",
    "File /tmp/kenv/v/lib/python3.11/site-packages/pandas/core/indexes/base.py:3823, in Index.get_loc(self, key)\n-> 3823     raise KeyError(key) from err\n",
    "KeyError: 'Agee'",
  ],
};

const crashed = (error: ErrorInfo = KERNEL_ERROR): Execution => ({
  ok: false,
  stdout: "",
  stderr: "",
  error,
  outputs: [],
  durationS: 0.1,
});

interface Judged {
  parent?: Metrics | null;
  judged?: boolean;
  attempt?: number;
  maxAttempts?: number;
  canRecheck?: boolean;
  recheck?: Partial<Recheck> | null;
}

async function judge(execution: Execution, options: Judged = {}): Promise<Evaluation> {
  const {
    parent = null,
    judged = true,
    attempt = 0,
    maxAttempts = 2,
    canRecheck = false,
    recheck = null,
  } = options;
  const request = EvaluateRequest.parse({
    kind: "evaluate",
    task: { templateId: "linear", kind: "model", hypothesis: "linear helps", judged, parent: 4 },
    execution,
    parent,
    attempt,
    maxAttempts,
    canRecheck,
    recheck,
  });
  return (await new Evaluator().handle(request)) as Evaluation;
}

const PARENT = metrics([0.8, 0.81, 0.79, 0.8, 0.8]);
// a near-tie: +0.01 on average, but the per-fold gains swing between -0.03 and +0.05 (SE 0.0126)
const NEAR_TIE = metrics([0.81, 0.86, 0.76, 0.81, 0.81]);
const REFOLDED_PARENT = [0.8, 0.81, 0.8, 0.8, 0.8];

describe("a failed cell", () => {
  it("is retried while attempts remain, with the error and the cell line it was raised on", async () => {
    for (const attempt of [0, 1]) {
      const e = await judge(crashed(), { attempt, maxAttempts: 2 });
      expect(e).toEqual({
        verdict: "retry",
        metrics: null,
        gain: null,
        feedback: "KeyError: 'Agee' (line 3: df['Agee'].mean())",
      });
    }
  });

  it("fails when the attempts are used up", async () => {
    expect((await judge(crashed(), { attempt: 2, maxAttempts: 2 })).verdict).toBe("failed");
    expect((await judge(crashed(), { attempt: 0, maxAttempts: 0 })).verdict).toBe("failed");
  });

  it("is retried when the step is not judged too", async () => {
    expect((await judge(crashed(), { judged: false })).verdict).toBe("retry");
  });
});

describe("feedbackFor", () => {
  it("is the error alone without a cell frame (a limit, or an error raised before the cell ran)", () => {
    expect(feedbackFor(crashed({ name: "Timeout", value: "cell ran over 30 s", traceback: [] }))).toBe(
      "Timeout: cell ran over 30 s",
    );
    const noArrow = {
      name: "SyntaxError",
      value: "invalid syntax",
      traceback: ["Cell In[2], line 1\n    x = (\n"],
    };
    expect(feedbackFor(crashed(noArrow))).toBe("SyntaxError: invalid syntax");
  });

  it("is empty for a cell that ran", () => {
    expect(feedbackFor(ran())).toBe("");
  });
});

describe("a cell that ran", () => {
  it("is done when the step is not judged", async () => {
    expect(await judge(ran(), { judged: false, parent: PARENT })).toEqual({
      verdict: "done",
      metrics: null,
      gain: null,
      feedback: "ran without error",
    });
  });

  it("fails when judged without a metrics record", async () => {
    const e = await judge(ran([], "roc_auc: 0.9 (printed, not published)"), { parent: PARENT });
    expect(e.verdict).toBe("failed");
    expect(e.feedback).toBe("the cell ran but published no metrics record: call evaluate(...)");
  });

  it("fails, naming the field, when its metrics record is malformed", async () => {
    const broken: Execution = {
      ...ran(),
      outputs: [{ mime: METRICS_MIME, data: { metric: "auc", folds: "many" } }],
    };
    const e = await judge(broken, { parent: PARENT });
    expect(e.verdict).toBe("failed");
    expect(e.feedback).toMatch(/^the cell's metrics record is malformed: higher_is_better: /);
  });

  it("is the reference without a parent", async () => {
    const m = metrics([0.7, 0.72, 0.71]);
    expect(await judge(ran([m]))).toEqual({
      verdict: "accepted",
      metrics: m,
      gain: null,
      feedback: "reference score roc_auc 0.7100 ± 0.0082",
    });
  });

  it("is judged on its last metrics record", async () => {
    const last = metrics([0.9, 0.9, 0.9, 0.9, 0.91]);
    const e = await judge(ran([metrics([0.5, 0.5, 0.5, 0.5, 0.5]), last]), { parent: PARENT });
    expect(e.metrics).toEqual(last);
    expect(e.verdict).toBe("accepted");
  });
});

describe("the keep rule", () => {
  it("accepts a gain beyond the noise, with its gain", async () => {
    const better = metrics([0.85, 0.85, 0.84, 0.86, 0.85]);
    const e = await judge(ran([better]), { parent: PARENT });
    expect(e.verdict).toBe("accepted");
    expect(e.gain).toBeCloseTo(0.05, 12);
    expect(e.metrics).toEqual(better);
    expect(e.feedback).toBe("roc_auc 0.8500 ± 0.0063 vs 0.8000: gain +0.0500 (paired SE 0.0032), kept");
  });

  it("rejects a gain within the noise", async () => {
    // mean gain +0.01, but the paired per-fold differences swing by +-0.1
    const e = await judge(ran([metrics([0.7, 0.91, 0.69, 0.9, 0.85])]), { parent: PARENT });
    expect(e.gain).toBeCloseTo(0.01, 12);
    expect(e.verdict).toBe("rejected");
    expect(e.feedback).toBe(
      "roc_auc 0.8100 ± 0.0961 vs 0.8000: gain +0.0100 (paired SE 0.0458), within noise: not kept",
    );
  });

  it("rejects a worse score", async () => {
    const e = await judge(ran([metrics([0.75, 0.76, 0.74, 0.75, 0.75])]), { parent: PARENT });
    expect(e.verdict).toBe("rejected");
    expect(e.gain).toBeCloseTo(-0.05, 12);
    expect(e.feedback).toBe("roc_auc 0.7500 ± 0.0063 vs 0.8000: gain -0.0500 (paired SE 0.0000), worse");
  });

  it("rejects an equal score", async () => {
    const e = await judge(ran([metrics([...PARENT.folds])]), { parent: PARENT });
    expect(e.verdict).toBe("rejected");
    expect(e.gain).toBe(0);
  });

  it("counts a lower loss as a positive gain", async () => {
    const parent = metrics([10.0, 11.0, 10.5, 10.2, 10.3], "rmse", false);
    const lower = await judge(ran([metrics([9.0, 10.0, 9.5, 9.2, 9.3], "rmse", false)]), { parent });
    expect(lower.verdict).toBe("accepted");
    expect(lower.gain).toBeCloseTo(1.0, 12);
    expect(lower.feedback).toBe("rmse 9.4000 ± 0.3406 vs 10.4000: gain +1.0000 (paired SE 0.0000), kept");
    const higher = await judge(ran([metrics([11.0, 12.0, 11.5, 11.2, 11.3], "rmse", false)]), { parent });
    expect(higher.verdict).toBe("rejected");
    expect(higher.gain).toBeCloseTo(-1.0, 12);
  });

  it("writes an equal loss as Python does (a negative zero gain, rejected as worse)", async () => {
    const parent = metrics([10.0, 11.0, 10.5, 10.2, 10.3], "rmse", false);
    const e = await judge(ran([metrics([...parent.folds], "rmse", false)]), { parent });
    expect(e.verdict).toBe("rejected");
    expect(e.feedback).toBe("rmse 10.4000 ± 0.3406 vs 10.4000: gain -0.0000 (paired SE 0.0000), worse");
  });

  it("pairs only the folds both have when their counts differ", async () => {
    // the two extra candidate folds are ignored by the paired differences (Python's zip)
    const e = await judge(ran([metrics([0.84, 0.86, 0.85, 0.7, 0.99])]), {
      parent: metrics([0.8, 0.81, 0.79]),
    });
    expect(e.verdict).toBe("accepted");
    expect(e.feedback).toBe("roc_auc 0.8480 ± 0.0920 vs 0.8000: gain +0.0480 (paired SE 0.0058), kept");
  });
});

describe("near-ties", () => {
  it("are not kept without a recheck", async () => {
    const e = await judge(ran([NEAR_TIE]), { parent: PARENT });
    expect(e.gain).toBeCloseTo(0.01, 12);
    expect(e.verdict).toBe("rejected");
    expect(e.feedback).toContain("within noise: not kept");
  });

  it("ask for a recheck when the budget allows", async () => {
    const e = await judge(ran([NEAR_TIE]), { parent: PARENT, canRecheck: true });
    expect(e.verdict).toBe("recheck");
    expect(e.metrics).toEqual(NEAR_TIE);
    expect(e.feedback).toBe(
      "roc_auc 0.8100 ± 0.0316 vs 0.8000: gain +0.0100 (paired SE 0.0126), near-tie: rechecking",
    );
  });

  it("leave clear outcomes alone", async () => {
    const better = await judge(ran([metrics([0.85, 0.85, 0.84, 0.86, 0.85])]), {
      parent: PARENT,
      canRecheck: true,
    });
    expect(better.verdict).toBe("accepted");
    const worse = await judge(ran([metrics([0.75, 0.75, 0.75, 0.75, 0.75])]), {
      parent: PARENT,
      canRecheck: true,
    });
    expect(worse.verdict).toBe("rejected");
  });

  it("are kept when the recheck confirms the gain, with the original metrics", async () => {
    const recheck = { candidate: [0.82, 0.83, 0.82, 0.81, 0.82], parent: REFOLDED_PARENT };
    const e = await judge(ran([NEAR_TIE]), { parent: PARENT, canRecheck: true, recheck });
    expect(e.verdict).toBe("accepted");
    expect(e.metrics).toEqual(NEAR_TIE); // comparable with every other step: same folds
    expect(e.feedback).toBe(
      "roc_auc 0.8100 ± 0.0316 vs 0.8000: gain +0.0100 (paired SE 0.0126); " +
        "near-tie rechecked on 10 folds: gain +0.0140 (SE 0.0062), kept",
    );
  });

  it("are rejected when the recheck shows no gain", async () => {
    const recheck = { candidate: [0.79, 0.8, 0.81, 0.79, 0.8], parent: REFOLDED_PARENT };
    const e = await judge(ran([NEAR_TIE]), { parent: PARENT, canRecheck: true, recheck });
    expect(e.verdict).toBe("rejected");
    expect(e.feedback).toBe(
      "roc_auc 0.8100 ± 0.0316 vs 0.8000: gain +0.0100 (paired SE 0.0126); " +
        "near-tie rechecked on 10 folds: gain +0.0030 (SE 0.0067), within noise: not kept",
    );
  });

  it("stay unproven, with the reason, when no new folds could be drawn", async () => {
    const recheck = { candidate: [], parent: [], why: "time folds cannot be reshuffled" };
    const e = await judge(ran([NEAR_TIE]), { parent: PARENT, canRecheck: true, recheck });
    expect(e.verdict).toBe("rejected");
    expect(e.feedback).toBe(
      "roc_auc 0.8100 ± 0.0316 vs 0.8000: gain +0.0100 (paired SE 0.0126); " +
        "not rechecked: time folds cannot be reshuffled, within noise: not kept",
    );
  });

  it("of losses are judged by their direction", async () => {
    const parent = metrics([1.0, 1.0, 1.0, 1.0, 1.0], "rmse", false);
    const candidate = metrics([0.99, 0.94, 1.04, 0.99, 0.99], "rmse", false); // lower is better
    expect((await judge(ran([candidate]), { parent, canRecheck: true })).verdict).toBe("recheck");
    const recheck = { candidate: [0.97, 0.98, 0.97, 0.98, 0.97], parent: [1.0, 1.0, 1.0, 1.0, 1.0] };
    const e = await judge(ran([candidate]), { parent, canRecheck: true, recheck });
    expect(e.verdict).toBe("accepted");
    expect(e.feedback).toBe(
      "rmse 0.9900 ± 0.0316 vs 1.0000: gain +0.0100 (paired SE 0.0158); " +
        "near-tie rechecked on 10 folds: gain +0.0180 (SE 0.0080), kept",
    );
  });
});

describe("the statistics", () => {
  it("pairs folds by position, signed by the metric's direction", () => {
    expect(pairedDifferences([0.9, 0.8], [0.85, 0.8], true).map((d) => Number(d.toFixed(12)))).toEqual([
      0.05, 0,
    ]);
    expect(pairedDifferences([1, 2, 3, 4], [0.5, 0.5], false)).toEqual([-0.5, -1.5]);
  });

  it("gives the standard error of the mean, 0 below two values", () => {
    // 0.01264911064067351: Python's standard_error of NEAR_TIE's paired differences
    expect(standardError(pairedDifferences(NEAR_TIE.folds, PARENT.folds, true))).toBeCloseTo(
      0.01264911064067351,
      15,
    );
    expect(standardError([0.3])).toBe(0);
    expect(standardError([])).toBe(0);
  });
});

it("answers with the offline summary", async () => {
  const reply = await new Evaluator().handle({
    kind: "answer",
    question: "why?",
    evidence: ["a"],
    summary: "Fare.",
  });
  expect(reply as Answer).toEqual({ text: "Fare." });
});
