/** The public Sandbox API on a real kernel: one persistent namespace, everything a cell produces captured. */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { isAbsolute, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalSandbox } from "../../sandboxes/src/local/sandbox.ts";
import { baseFolder } from "./helpers.ts";

const PNG_MAGIC = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const base = baseFolder();
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe("one shared kernel", () => {
  const sb = new LocalSandbox({ workdir: join(base, "shared", "work"), pool: 0 });
  beforeAll(() => sb.start());
  afterAll(() => sb.close());

  it("keeps state across cells, and an expression's value is an output", async () => {
    const first = await sb.execute("base_value = 20", { timeoutS: 30 });
    expect(first.ok && first.error === undefined).toBe(true);
    const second = await sb.execute("answer = base_value + 22\nprint(answer)", { timeoutS: 30 });
    expect(second.stdout).toBe("42\n");
    const third = await sb.execute("answer * 2", { timeoutS: 30 });
    expect(third.outputs).toEqual([{ mime: "text/plain", text: "84" }]);
  });

  it("captures stdout and stderr separately, per cell", async () => {
    const r = await sb.execute(
      "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\nprint('more')",
    );
    expect([r.ok, r.stdout, r.stderr]).toEqual([true, "to stdout\nmore\n", "to stderr\n"]);
    const quiet = await sb.execute("silent_value = 1");
    expect([quiet.stdout, quiet.stderr]).toEqual(["", ""]);
  });

  it("measures the duration", async () => {
    const r = await sb.execute("import time\ntime.sleep(0.3)", { timeoutS: 30 });
    expect(r.durationS).toBeGreaterThanOrEqual(0.3);
    expect(r.durationS).toBeLessThan(10);
  });

  it("reports an exception's name, value and plain traceback, and the kernel goes on", async () => {
    const code = "print('before the error')\ndef explode():\n    raise ValueError('bad input 42')\nexplode()";
    const r = await sb.execute(code, { timeoutS: 30 });
    expect([r.ok, r.stdout, r.error?.name, r.error?.value]).toEqual([
      false,
      "before the error\n",
      "ValueError",
      "bad input 42",
    ]);
    const text = r.error?.traceback.join("\n") ?? "";
    expect(text).toContain("explode");
    expect(text).not.toContain("\x1b[");
    const again = await sb.execute("explode", { timeoutS: 30 });
    expect(again.ok && again.outputs[0]?.text).toContain("explode");
  });

  it("saves a plot as a PNG under the run's artifacts folder", async () => {
    const code = "import matplotlib.pyplot as plt\nplt.plot([0, 1, 2], [2, 0, 1])\nplt.show()";
    const r = await sb.execute(code, { timeoutS: 60 });
    expect(r.error).toBeUndefined();
    const images = r.outputs.filter((o) => o.mime === "image/png");
    expect(images).toHaveLength(1);
    const rel = images[0]?.path as string;
    expect(isAbsolute(rel)).toBe(false);
    expect(rel).toMatch(/^artifacts\/[0-9a-f]{16}\.png$/);
    expect(readFileSync(join(base, "shared", rel)).subarray(0, 8)).toEqual(PNG_MAGIC);
  });

  it("turns published records into structured outputs", async () => {
    const code =
      "from dsassist_kernel.toolkit import publish\n" +
      "publish('metrics', {'metric': 'rmse', 'folds': [1.0, 2.0], 'mean': 1.5})\n" +
      "publish('profile', {'rows': 3})\nprint('published')";
    const r = await sb.execute(code, { timeoutS: 60 });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe("published\n");
    expect(r.outputs).toEqual([
      {
        mime: "application/vnd.dsassist.metrics+json",
        data: { metric: "rmse", folds: [1.0, 2.0], mean: 1.5 },
      },
      { mime: "application/vnd.dsassist.profile+json", data: { rows: 3 } },
    ]);
  });

  it("interrupts a cell at its timeout, quickly, and the namespace survives", async () => {
    expect((await sb.execute("kept_before_timeout = 'still here'")).ok).toBe(true);
    const start = performance.now();
    const r = await sb.execute("import time\ntime.sleep(30)", { timeoutS: 1 });
    expect(performance.now() - start).toBeLessThan(4000);
    expect(r.error?.name).toBe("Timeout");
    expect(r.error?.value).not.toContain("fresh kernel");
    expect((await sb.execute("print(kept_before_timeout)")).stdout).toBe("still here\n");
  });

  it("describes variables and imports, without underscore names", async () => {
    const code = [
      "import numpy as np",
      "import pandas as pd",
      "frame = pd.DataFrame({'age': [1.0, 2.0, 3.0], 'city': ['a', 'b', 'c']})",
      "numbers = [1, 2, 3]",
      "count = 7",
      "settings = {'alpha': 1, 'beta': 2}",
      "matrix = np.zeros((4, 5))",
      "_private = 1",
      "def helper():\n    return 1",
    ].join("\n");
    expect((await sb.execute(code, { timeoutS: 60 })).ok).toBe(true);
    const state = await sb.state();
    const byName = new Map(state.variables.map((v) => [v.name, v]));
    expect(byName.get("frame")).toMatchObject({
      type: "DataFrame",
      shape: "(3, 2)",
      columns: ["age", "city"],
    });
    expect(byName.get("frame")?.detail).toContain("float64");
    expect(byName.get("numbers")).toMatchObject({ type: "list", shape: "len 3" });
    expect(byName.get("count")).toMatchObject({ type: "int", detail: "= 7" });
    expect(byName.get("settings")?.detail).toContain("alpha");
    expect(byName.get("matrix")).toMatchObject({ type: "ndarray", shape: "(4, 5)" });
    expect(byName.get("helper")?.type).toBe("function");
    const names = [...byName.keys()];
    expect(names.filter((n) => n.startsWith("_"))).toEqual([]);
    // IPython's own names and the probes defined at start stay hidden
    expect(names.filter((n) => ["In", "Out", "get_ipython", "exit", "quit"].includes(n))).toEqual([]);
    expect(state.modules).toEqual(expect.arrayContaining(["np", "pd"]));
    expect(names).not.toContain("np");
  });

  it("still describes the namespace around an object with an odd shape attribute", async () => {
    const code = "class Tile:\n    shape = 'square'\ntile = Tile()\ntile.shape = 4\nvisible = 1";
    expect((await sb.execute(code)).ok).toBe(true);
    const names = (await sb.state()).variables.map((v) => v.name);
    await sb.execute("del tile");
    expect(names).toEqual(expect.arrayContaining(["tile", "visible"]));
  });
});

describe("own kernels", () => {
  it("caps an output flood, keeping head and tail, per stream and for values", async () => {
    const small = new LocalSandbox({
      workdir: join(base, "flood", "work"),
      pool: 0,
      limits: { outputKb: 1 },
    });
    await small.start();
    try {
      const r = await small.execute("print('HEAD' + 'x' * 20000 + 'TAIL')", { timeoutS: 30 });
      expect(r.stdout.startsWith("HEAD") && r.stdout.endsWith("TAIL\n")).toBe(true);
      expect(r.stdout).toContain(`[${4 + 20000 + 4 + 1 - 1024} characters cut]`);
      expect(r.stdout.length).toBeLessThan(1024 + 100);
      const many = await small.execute(
        "import sys\nfor i in range(5000):\n    print(i)\n    print(-i, file=sys.stderr)",
      );
      expect(many.stdout.startsWith("0\n1\n2\n") && many.stdout.endsWith("4998\n4999\n")).toBe(true);
      expect(many.stdout.length).toBeLessThan(1024 + 100);
      expect(many.stderr.endsWith("-4999\n") && many.stderr.length < 1024 + 100).toBe(true);
      const [out] = (await small.execute("'y' * 50000")).outputs;
      expect(out?.text).toContain("characters cut");
      expect(out?.text?.length).toBeLessThan(1024 + 100);
    } finally {
      await small.close();
    }
  });

  it("reports a dead kernel and runs the next cell on a fresh one", async () => {
    const own = new LocalSandbox({ workdir: join(base, "dies", "work") });
    await own.start();
    try {
      expect((await own.execute("doomed = 1")).ok).toBe(true);
      const start = performance.now();
      const r = await own.execute("import os\nos._exit(1)", { timeoutS: 30 });
      expect(performance.now() - start).toBeLessThan(15_000);
      expect(r.error?.name).toBe("KernelDied");
      expect(r.error?.value).toBe(
        "the kernel died while running the cell: exit status 1; a fresh kernel replaced it (no checkpoint yet)",
      );
      const after = await own.execute("print('doomed' in dir())\nfresh = 2\nprint(fresh + 1)");
      expect(after.stdout).toBe("False\n3\n");
      expect(own.alive).toBe(true);
      expect((await own.state()).variables.map((v) => v.name)).toContain("fresh");
    } finally {
      await own.close();
    }
  });

  it("restarts a kernel that died between calls, and close() leaves no socket folder", async () => {
    const own = new LocalSandbox({ workdir: join(base, "between", "work"), pool: 0 });
    await own.start();
    // the kernel ends itself after the cell has returned
    const r = await own.execute("import os, threading\nthreading.Timer(0.2, os._exit, (3,)).start()");
    expect(r.ok).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(own.alive).toBe(false);
    const after = await own.execute("print('back')");
    expect(after.stdout).toBe("back\n");
    const sockets = (own as unknown as { kernel: { connection: { socketDir: string } } }).kernel.connection
      .socketDir;
    expect(existsSync(sockets)).toBe(true);
    await own.close();
    expect(existsSync(sockets)).toBe(false);
  });
});
