/** The coder through its message interface: CodeRequest / FixRequest in, Cell out (tests/agents/test_coder.py). */
import { afterAll, describe, expect, it } from "vitest";
import { Coder, importLine, UnknownTemplate } from "../../../core/src/agents/coder.ts";
import { IMPORTS } from "../../../core/src/agents/imports.ts";
import {
  type Cell,
  CodeRequest,
  type ErrorInfo,
  FixRequest,
  KernelState,
  type Params,
  Subtask,
} from "../../../core/src/messages.ts";
import type { Template } from "../../../core/src/templates/types.ts";
import { Python } from "./python.ts";

/** A template that writes its parameters as Python assignments (JSON literals that Python also reads). */
function template(id: string, kind: string): Template {
  return {
    id,
    kind,
    phase: kind,
    judged: true,
    tags: [],
    options: () => [],
    parentFor: () => null,
    task: (params: Params, parent: number | null) =>
      Subtask.parse({ templateId: id, kind, hypothesis: `${id} helps`, params, parent }),
    render: (task) =>
      [
        `# ${task.hypothesis}`,
        ...Object.entries(task.params).map(([k, v]) => `${k} = ${JSON.stringify(v)}`),
      ].join("\n"),
    renderPrompt: () => "",
  };
}

const py = new Python();
afterAll(() => py.close());

const coder = new Coder([template("echo", "feature"), template("linear", "model")]);

const task = (templateId = "linear", params: Params = {}) =>
  Subtask.parse({ templateId, kind: "model", hypothesis: "a hypothesis", params });

/** A kernel state holding frames with the given columns, plus a few other names. */
function state(frames: Record<string, string[]> = {}, others: string[] = []): KernelState {
  return KernelState.parse({
    variables: [
      ...Object.entries(frames).map(([name, columns]) => ({ name, type: "DataFrame", columns })),
      { name: "train_frame", type: "DataFrame", shape: "(3, 1)", columns: ["score"] },
      { name: "threshold", type: "float", detail: "= 0.5" },
      ...others.map((name) => ({ name, type: "int" })),
    ],
    modules: ["np", "pd"],
  });
}

async function fix(code: string, error: ErrorInfo, st = state()): Promise<Cell> {
  const request = FixRequest.parse({
    kind: "fix",
    task: task(),
    code,
    execution: { ok: false, error },
    feedback: `${error.name}: ${error.value}`,
    attempt: 1,
    state: st,
  });
  return coder.handle(request);
}

const nameError = (name: string, suffix = ""): ErrorInfo => ({
  name: "NameError",
  value: `name '${name}' is not defined${suffix}`,
  traceback: [],
});
const keyError = (value: string): ErrorInfo => ({ name: "KeyError", value, traceback: [] });

const PASSENGERS =
  "import pandas as pd\npassengers = pd.DataFrame({'Age': [22.0, 38.0], 'Fare': [7.25, 71.3], 'Sex': ['m', 'f']})";

describe("rendering", () => {
  it("renders the cell of the task's template, with the task's parameters", async () => {
    const params = { value: { a: [1, 2.5, null, true], b: "it's" }, label: 'say "hi"' };
    const cell = await coder.handle(
      CodeRequest.parse({ kind: "code", task: task("echo", params), state: state() }),
    );
    expect(cell).toEqual({
      code: template("echo", "feature").render(task("echo", params)),
      rule: "",
      gaveUp: false,
    });
    expect(cell.code.startsWith("# a hypothesis\n")).toBe(true);
    // JSON literals are Python literals once these three names are defined
    const ran = await py.values(cell.code, "true, false, null = True, False, None", {
      value: "value",
      label: "label",
    });
    expect(ran).toEqual(params);
  });

  it("names an unknown template in one line", async () => {
    const request = CodeRequest.parse({ kind: "code", task: task("nope"), state: state() });
    const error = await coder.handle(request).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnknownTemplate);
    expect((error as Error).message).toBe('no template "nope" (known: echo, linear)');
  });
});

describe("fixes", () => {
  it("adds the import of a scikit-learn estimator, and the cell then runs", async () => {
    const code = "qt = QuantileTransformer(n_quantiles=10)";
    const cell = await fix(code, await py.failure(code));
    expect(cell.rule).toBe("add-missing-import");
    expect(cell.gaveUp).toBe(false);
    expect(cell.code.split("\n")[0]).toBe("from sklearn.preprocessing import QuantileTransformer");
    expect(cell.code.endsWith(code)).toBe(true);
    expect(await py.values(cell.code, "", { kind: "type(qt).__name__" })).toEqual({
      kind: "QuantileTransformer",
    });
  });

  it("adds the import of a common alias", async () => {
    const cell = await fix("arr = np.arange(3)", nameError("np"));
    expect(cell).toEqual({
      code: "import numpy as np\narr = np.arange(3)",
      rule: "add-missing-import",
      gaveUp: false,
    });
  });

  it("prefers an import to a rename when both apply (the rules' order)", async () => {
    const cell = await fix("arr = np.arange(3)", nameError("np"), state({}, ["npx"]));
    expect(cell.rule).toBe("add-missing-import");
  });

  it("renames a misspelt variable to the closest kernel variable, and the cell then runs", async () => {
    const code = "n = len(trian_frame)\nlabelled = trian_frame.assign(high=trian_frame.score > threshold)";
    const setup =
      "import pandas as pd\ntrain_frame = pd.DataFrame({'score': [0.2, 0.7, 0.9]})\nthreshold = 0.5";
    const cell = await fix(code, await py.failure(code, setup));
    expect(cell.rule).toBe("rename-to-defined-variable");
    expect(cell.code).not.toContain("trian_frame");
    expect(cell.code.split("train_frame").length - 1).toBe(3);
    expect(await py.values(cell.code, setup, { n: "n", high: "labelled['high'].tolist()" })).toEqual({
      n: 3,
      high: [false, true, true],
    });
  });

  it("reads the name before a 'Did you mean' suffix", async () => {
    const cell = await fix(
      "keep = 0.7 > threshhold",
      nameError("threshhold", ". Did you mean: 'threshold'?"),
    );
    expect(cell.code).toBe("keep = 0.7 > threshold");
  });

  it("renames whole names only, of any script (Python's \\w and \\b)", async () => {
    // expected values from the Python coder's _misspelled_name on the same inputs
    const cell = await fix(
      "n = len(trian) + trian_size",
      nameError("trian"),
      state({}, ["train", "trian_size"]),
    );
    expect(cell.code).toBe("n = len(train) + trian_size");
    const accented = await fix("n = len(donées)", nameError("donées"), state({ données: ["a"] }));
    expect(accented).toEqual({ code: "n = len(données)", rule: "rename-to-defined-variable", gaveUp: false });
  });

  it("replaces an unknown column by the closest real column, and the cell then runs", async () => {
    const code = "mean_age = passengers['Agee'].mean()";
    const error = await py.failure(code, PASSENGERS);
    expect(error).toMatchObject({ name: "KeyError", value: "'Agee'" });
    const cell = await fix(code, error, state({ passengers: ["Age", "Fare", "Sex"] }));
    expect(cell.rule).toBe("use-existing-column");
    expect(cell.code).toBe("mean_age = passengers['Age'].mean()");
    expect(await py.values(cell.code, PASSENGERS, { mean_age: "mean_age" })).toEqual({ mean_age: 30 });
  });

  it("replaces an unknown column in double quotes", async () => {
    const cell = await fix('x = X["Pclass"]', keyError("'Pclass'"), state({ X: ["pclass", "fare"] }));
    expect(cell.code).toBe('x = X["pclass"]');
  });

  it('replaces an unknown column in a list of columns (pandas: "[...] not in index")', async () => {
    const code = "subset = passengers[['Agee', 'Fare']]";
    const error = await py.failure(code, PASSENGERS);
    expect(error.value).toBe(`"['Agee'] not in index"`);
    const cell = await fix(code, error, state({ passengers: ["Age", "Fare", "Sex"] }));
    expect(cell).toEqual({
      code: "subset = passengers[['Age', 'Fare']]",
      rule: "use-existing-column",
      gaveUp: false,
    });
    expect(await py.values(cell.code, PASSENGERS, { shape: "list(subset.shape)" })).toEqual({
      shape: [2, 2],
    });
  });

  it('replaces every unknown column of a list (pandas: "None of [Index([...])]")', async () => {
    const code = "subset = passengers[['Agee', 'Faer']]";
    const error = await py.failure(code, PASSENGERS);
    expect(error.value).toMatch(/^"None of \[Index\(\['Agee', 'Faer'\]/);
    const cell = await fix(code, error, state({ passengers: ["Age", "Fare", "Sex"] }));
    expect(cell.code).toBe("subset = passengers[['Age', 'Fare']]");
  });

  it("replaces only the quoted column, literally", async () => {
    // expected values from the Python coder's _unknown_column on the same inputs
    const twice = await fix(
      `m = passengers['Agee'] + passengers["Agee"] + passengers['Ageee']`,
      keyError("'Agee'"),
      state({ passengers: ["Age", "Fare"] }),
    );
    expect(twice.code).toBe(`m = passengers['Age'] + passengers["Age"] + passengers['Ageee']`);
    const dotted = await fix("x = X['a.c'] + X['abc']", keyError("'a.c'"), state({ X: ["a+c"] }));
    expect(dotted.code).toBe("x = X['a+c'] + X['abc']");
  });

  it("drops an unexpected keyword argument from a call, and the cell then runs", async () => {
    const code =
      "from sklearn.linear_model import LogisticRegression\n" +
      "model = LogisticRegression(C=0.5, n_estimators=100, max_iter=50)";
    const error = await py.failure(code);
    expect(error.value).toContain("unexpected keyword argument 'n_estimators'");
    const cell = await fix(code, error);
    expect(cell.rule).toBe("drop-unknown-parameter");
    expect(cell.code).not.toContain("n_estimators");
    expect(await py.values(cell.code, "", { C: "model.C", max_iter: "model.max_iter" })).toEqual({
      C: 0.5,
      max_iter: 50,
    });
  });

  it.each([
    ["{'n_estimators': 100, 'C': 0.5}", { C: 0.5 }],
    ["{'C': 0.5, 'n_estimators': 100}", { C: 0.5 }],
    ["{'n_estimators': 100}", {}],
  ])("drops an unexpected keyword from a spec dict %s", async (params, expected) => {
    const code = `candidate_spec = {**spec, **{'model': 'linear', 'params': ${params}}}`;
    const error: ErrorInfo = {
      name: "TypeError",
      value: "LogisticRegression.__init__() got an unexpected keyword argument 'n_estimators'",
      traceback: [],
    };
    const cell = await fix(code, error);
    expect(cell.rule).toBe("drop-unknown-parameter");
    expect(await py.values(cell.code, "spec = {'model': 'dummy'}", { spec: "candidate_spec" })).toEqual({
      spec: { model: "linear", params: expected },
    });
  });

  it("drops the keyword wherever it is passed, and only that keyword", async () => {
    // expected value from the Python coder's _unexpected_keyword on the same input
    const code =
      "a = f(n_estimators=3)\nb = g(n_estimators = 4, x=1)\nc = {'n_estimators': 5}\nd = h(my_n_estimators=1)";
    const error = {
      name: "TypeError",
      value: "f() got an unexpected keyword argument 'n_estimators'",
      traceback: [],
    };
    const cell = await fix(code, error);
    expect(cell.code).toBe("a = f()\nb = g( x=1)\nc = {}\nd = h(my_n_estimators=1)");
  });

  it("gives up on an error no rule knows", async () => {
    const code = "x = float('abc')";
    expect(await fix(code, await py.failure(code))).toEqual({ code, rule: "", gaveUp: true });
  });

  it("gives up on an undefined name with no candidate", async () => {
    expect(await fix("y = zqxv + 1", nameError("zqxv"))).toEqual({
      code: "y = zqxv + 1",
      rule: "",
      gaveUp: true,
    });
  });

  it("does not take the table's object properties for imports", async () => {
    expect(importLine("constructor")).toBeUndefined();
    expect((await fix("x = constructor()", nameError("constructor"))).gaveUp).toBe(true);
  });

  it("gives up on an unknown column with no close match", async () => {
    const cell = await fix("v = X['cabin_deck']", keyError("'cabin_deck'"), state({ X: ["age", "fare"] }));
    expect(cell.gaveUp).toBe(true);
  });

  it("gives up without an error", async () => {
    const request = FixRequest.parse({
      kind: "fix",
      task: task(),
      code: "x = 1",
      execution: { ok: true },
      feedback: "",
      attempt: 1,
      state: state(),
    });
    expect(await coder.handle(request)).toEqual({ code: "x = 1", rule: "", gaveUp: true });
  });
});

describe("the import table", () => {
  it("holds the common aliases and the public scikit-learn estimators", () => {
    expect(importLine("pd")).toBe("import pandas as pd");
    expect(importLine("make_pipeline")).toBe("from sklearn.pipeline import make_pipeline");
    expect(importLine("HistGradientBoostingClassifier")).toBe(
      "from sklearn.ensemble import HistGradientBoostingClassifier",
    );
    expect(importLine("LogisticRegression")).toBe("from sklearn.linear_model import LogisticRegression");
    expect(IMPORTS.size).toBeGreaterThan(150);
    expect([...IMPORTS.values()].filter((line) => line.includes("._"))).toEqual([]);
  });

  it("has lines that each define their name in the kernel interpreter", async () => {
    const setup = `import json\ntable = json.loads(${JSON.stringify(JSON.stringify([...IMPORTS]))})`;
    const check =
      "missing = []\nfor name, line in table:\n    ns = {}\n    exec(line, ns)\n    if name not in ns: missing.append(name)";
    expect(await py.values(check, setup, { missing: "missing" })).toEqual({ missing: [] });
  });
});
