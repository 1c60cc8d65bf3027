/**
 * How much time the loop itself costs, next to the experiments it runs: the port of
 * bench/loop_overhead.py. Three figures, measured in one go (printed; nothing is asserted):
 *
 * 1. Kernel round trip: `Sandbox.execute("x = 1")` under bubblewrap and with no isolation,
 *    and the same request sent by the bare Jupyter client (ZeroMQ, no Sandbox layer) as a
 *    baseline. All three kernels are alive at once and called in turn, so that drift in the
 *    machine's load falls on each alike.
 * 2. Framework time per step in a real run (`api.run`, budget 2m, 20 steps, seed 0): per step,
 *    `Step.duration_s` minus the kernel time of its recorded executions (provenance.kuzu), and
 *    the same between consecutive starts, which adds the recording. The run is instrumented
 *    (Sandbox, bus and RunStore methods wrapped) to break both figures down into their parts.
 * 3. State continuity: the cells of the run's first `--steps` steps run (a) in order in one
 *    fresh persistent kernel, (b) as a new Python process per step, where step k re-runs the
 *    cells of steps 0..k since nothing survives a process. The ratio is a median over rounds.
 *
 * Run: npx tsx bench/loop.ts [--roundtrips 500] [--repeats 3] [--steps 10] [--data CSV] [--target COL]
 *                            [--parts 1,2,3]   (part 3 needs part 2's run)
 */
import { spawn } from "node:child_process";
import {
  chmodSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import {
  bubblewrapWorks,
  createSandbox,
  type Isolation,
  type KernelEnv,
  kernelPython,
  LocalSandbox,
} from "@dsassist/sandboxes";
import { Connection, Database, type KuzuValue } from "kuzu";
import { type RunResult, run } from "../core/src/api.ts";
import { InProcessBus } from "../core/src/bus/inprocess.ts";
import { ACCEPT_CELL } from "../core/src/loop.ts";
import type { Role } from "../core/src/messages.ts";
import { DATABASE_NAME, RunStore } from "../core/src/provenance/kuzu.ts";
import { KernelClient, writeConnection } from "../sandboxes/src/jupyter/client.ts";
import { heading, loadAverage, median, ms, quantile, seconds, sum, verdict } from "./common.ts";

const REPO = resolve(import.meta.dirname, "..");
const ROUNDTRIP_TARGET_MS = 2.5;
const FRAMEWORK_TARGET_MS = 5;
const SPEEDUP_TARGET = 8;
const CELL_TIMEOUT_S = 300;
const WARMUP = 20;
const TRIVIAL = "x = 1";
const PROBES = 30;
/** LocalSandbox's kernel flags (no history database, no sleep before each reply): the bare
 * client's kernel must differ from the sandbox's only by the Sandbox layer */
const KERNEL_FLAGS = ["--HistoryManager.enabled=False", "--IPythonKernel._execute_sleep=0"];
/** the controller's RECHECK_CELL starts so (it is not exported) */
const RECHECK_PREFIX = "recheck_record =";

// Runs in each fresh process: the cells of steps 0..k in one namespace, as a kernel would.
// stdout goes to /dev/null, so the repr that IPython's display() prints outside a kernel
// (the toolkit's `publish`) is discarded.
const FRESH_RUNNER = `
import json, sys
steps = json.load(open(sys.argv[1]))
namespace = {"__name__": "__main__"}
for k, cells in enumerate(steps[: int(sys.argv[2]) + 1]):
    for i, code in enumerate(cells):
        exec(compile(code, f"<step {k} cell {i}>", "exec"), namespace)
`;
/** What the setup cell imports: the price every fresh process pays before any work. */
const SETUP_IMPORTS =
  "import matplotlib.pyplot, numpy, pandas, IPython.display; import dsassist_kernel.toolkit, dsassist_kernel.search";
const UNJUDGED = new Set(["setup", "profile", "guard", "validation", "final"]);

/** The flags, checked: a bad one ends the program with one line (exit 2). */
function commandLine() {
  try {
    const { values } = parseArgs({
      options: {
        roundtrips: { type: "string", default: "500" },
        repeats: { type: "string", default: "3" },
        steps: { type: "string", default: "10" },
        data: { type: "string", default: join(REPO, "examples", "titanic.csv") },
        target: { type: "string", default: "survived" },
        parts: { type: "string", default: "1,2,3" },
      },
    });
    const count = (name: "roundtrips" | "repeats" | "steps") => {
      const n = Number(values[name]);
      if (!Number.isInteger(n) || n < 1)
        throw new Error(`--${name} must be a whole number >= 1, not "${values[name]}"`);
      return n;
    };
    const parts = new Set(values.parts.split(","));
    if (parts.has("3") && !parts.has("2"))
      throw new Error("part 3 runs the cells of part 2's run: give --parts 2,3");
    const data = resolve(values.data);
    if (!existsSync(data)) throw new Error(`no table at ${data}`);
    const numbers = { roundtrips: count("roundtrips"), repeats: count("repeats"), steps: count("steps") };
    return { ...numbers, data, target: values.target, parts };
  } catch (error) {
    console.error(`bench/loop.ts: ${(error as Error).message}`);
    process.exit(2);
  }
}

const args = commandLine();

// ---- 1. kernel round trip -----------------------------------------------------------------

/** One way of sending the trivial cell, and of ending its kernel. */
interface Caller {
  label: string;
  call: () => Promise<unknown>;
  close: () => Promise<void>;
  /** the kernel's Python process, whose CPU time /proc tells */
  kernelPid: number | undefined;
}

/** One caller's measured calls: wall seconds of each, and CPU seconds each side spent on them all. */
interface Calls {
  wallS: number[];
  hostCpuS: number;
  kernelCpuS: number;
}

async function sandboxCaller(env: KernelEnv, isolation: Isolation, workdir: string): Promise<Caller> {
  const sandbox = await createSandbox({
    workdir,
    isolation,
    pool: 0,
    python: env.python,
    runtime: env.runtime,
  });
  const label = isolation === "none" ? "Sandbox.execute, no isolation" : "Sandbox.execute, bubblewrap";
  // the confinement sets the kernel's HOME to its work folder: that tells our kernel from others
  const kernelPid = findKernel((environ) => environ.includes(`HOME=${sandbox.workdir}`));
  return { label, call: () => sandbox.execute(TRIVIAL), close: () => sandbox.close(), kernelPid };
}

/** The same execute_request through the Jupyter client alone: signing, ZeroMQ, the kernel. */
async function bareCaller(env: KernelEnv, workdir: string): Promise<Caller> {
  const connection = writeConnection(mkdtempSync(join(tmpdir(), "dsassist-bench-bare-")));
  const logFd = openSync("/dev/null", "a");
  const command = [env.python, "-m", "ipykernel_launcher", "-f", connection.file, ...KERNEL_FLAGS];
  const client = KernelClient.launch(connection, { command, env: hostEnv(), cwd: workdir, logFd });
  closeSync(logFd);
  await client.ready(60_000);
  const content = {
    code: TRIVIAL,
    silent: false,
    store_history: true,
    user_expressions: {},
    allow_stdin: false,
    stop_on_error: true,
  };
  const call = async () => {
    const request = client.execute(content);
    try {
      await request.idle; // what Sandbox.execute waits for too
    } finally {
      request.end();
    }
  };
  const kernelPid = findKernel((_, argv) => argv.includes(connection.file));
  return { label: "bare Jupyter client (ZeroMQ)", call, close: () => client.close(), kernelPid };
}

/** The pid of the ipykernel process (not its bubblewrap parent) that `matches`; as root we read any. */
function findKernel(matches: (environ: string[], argv: string[]) => boolean): number | undefined {
  for (const entry of readdirSync("/proc").filter((name) => /^\d+$/.test(name))) {
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      if (argv[1] !== "-m" || argv[2] !== "ipykernel_launcher") continue;
      if (matches(readFileSync(`/proc/${entry}/environ`, "utf8").split("\0"), argv)) return Number(entry);
    } catch {
      // the process ended while we looked
    }
  }
  return undefined;
}

/** User plus system CPU seconds of a process, all its threads (/proc/<pid>/stat, in USER_HZ = 100). */
function processCpuS(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // from field 3 (state) on
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime
}

/** Each caller in turn, `count` times after a warm-up: wall time per call and CPU on each side. */
async function measureCalls(callers: Caller[], count: number): Promise<Calls[]> {
  for (let i = 0; i < WARMUP; i++) for (const caller of callers) await caller.call();
  const calls: Calls[] = callers.map((c) => ({
    wallS: [],
    hostCpuS: 0,
    kernelCpuS: -processCpuS(c.kernelPid),
  }));
  for (let i = 0; i < count; i++) {
    for (const [c, caller] of callers.entries()) {
      const cpu = process.cpuUsage();
      calls[c]!.wallS.push(await seconds(caller.call));
      const used = process.cpuUsage(cpu);
      calls[c]!.hostCpuS += (used.user + used.system) / 1e6;
    }
  }
  for (const [c, caller] of callers.entries()) calls[c]!.kernelCpuS += processCpuS(caller.kernelPid);
  return calls;
}

async function roundTrips(env: KernelEnv, base: string, count: number): Promise<void> {
  const modes: Isolation[] = bubblewrapWorks() ? ["auto", "none"] : ["none"];
  const callers = [
    ...(await Promise.all(modes.map((mode) => sandboxCaller(env, mode, folder(base, `roundtrip-${mode}`))))),
    await bareCaller(env, folder(base, "roundtrip-bare")),
  ];
  let calls: Calls[];
  try {
    calls = await measureCalls(callers, count);
  } finally {
    await Promise.all(callers.map((caller) => caller.close()));
  }
  heading(`1. kernel round trip of \`${TRIVIAL}\` (${count} calls each after ${WARMUP} warm-up, in turn)`);
  for (const [c, caller] of callers.entries()) {
    const t = calls[c]!.wallS;
    console.log(
      `${caller.label.padEnd(32)} median ${ms(median(t))}   p10 ${ms(quantile(t, 0.1))}` +
        `   p90 ${ms(quantile(t, 0.9))}   min ${ms(Math.min(...t))}   max ${ms(Math.max(...t))}`,
    );
  }
  console.log("CPU per call (load does not inflate it; the two sides take turns, so their sum is roughly");
  console.log("what a call takes on an idle machine):");
  for (const [c, caller] of callers.entries()) {
    const { hostCpuS, kernelCpuS } = calls[c]!;
    console.log(
      `${caller.label.padEnd(32)} this process ${ms(hostCpuS / count)}   kernel ${ms(kernelCpuS / count)}` +
        `   together ${ms((hostCpuS + kernelCpuS) / count)}`,
    );
  }
  const bare = calls.at(-1)!;
  for (const [c, caller] of callers.slice(0, -1).entries()) {
    const own = calls[c]!;
    const wall = median(own.wallS) - median(bare.wallS);
    const cpu = (own.hostCpuS - bare.hostCpuS) / count;
    console.log(
      `${caller.label} vs bare client: ${(median(own.wallS) / median(bare.wallS)).toFixed(2)}x median wall` +
        ` (${wall >= 0 ? "+" : ""}${ms(wall)}), this process's CPU ${cpu >= 0 ? "+" : ""}${ms(cpu)} per call`,
    );
  }
  const judged = median(calls[0]!.wallS); // bubblewrap where it works: what a run uses
  console.log(
    `target <= ${ROUNDTRIP_TARGET_MS} ms median (${callers[0]!.label}): ${verdict(judged * 1000 <= ROUNDTRIP_TARGET_MS)}`,
  );
}

// ---- 2. framework time per step -----------------------------------------------------------

/** What the instrumented calls are, and whose work each is: the kernel's or the framework's. */
const PARTS = {
  cells: { label: "the step's own cells (Sandbox.execute)", work: "kernel", inStep: true },
  recheck: { label: "recheck cell of a near-tie", work: "kernel", inStep: true },
  accept: { label: `accept cell \`${ACCEPT_CELL}\``, work: "kernel", inStep: true },
  checkpoint: { label: "Sandbox.checkpoint (pickles the namespace)", work: "kernel", inStep: true },
  branch: { label: "Sandbox.branch (restore a checkpoint)", work: "kernel", inStep: true },
  state: { label: "Sandbox.state() probe", work: "framework", inStep: true },
  coder: { label: "coder (bus request)", work: "framework", inStep: true },
  evaluator: { label: "evaluator (bus request)", work: "framework", inStep: true },
  reflector: { label: "reflector (bus request)", work: "framework", inStep: false },
  record: { label: "RunStore.recordStep (Kùzu)", work: "framework", inStep: false },
  planner: { label: "planner (the next step's plan)", work: "framework", inStep: false },
} as const satisfies Record<string, { label: string; work: "kernel" | "framework"; inStep: boolean }>;
type Part = keyof typeof PARTS;
const PART_NAMES = Object.keys(PARTS) as Part[];
const KERNEL_EXTRA: Part[] = ["recheck", "accept", "checkpoint", "branch"];

/** One instrumented call; `step` is the step it names, if it names one. */
interface Span {
  part: Part;
  step: number | null;
  start: number;
  end: number;
}

const spans: Span[] = [];

type AsyncMethod = (...params: unknown[]) => Promise<unknown>;

/** Wrap an async method of a prototype so that each call leaves a Span; returns the undo. */
function timeCalls<T extends object>(
  proto: T,
  method: keyof T & string,
  classify: (params: unknown[]) => Pick<Span, "part" | "step">,
): () => void {
  const methods = proto as unknown as Record<string, AsyncMethod>;
  const original = methods[method]!;
  methods[method] = async function (this: unknown, ...params: unknown[]) {
    const start = performance.now();
    try {
      return await original.apply(this, params);
    } finally {
      spans.push({ ...classify(params), start, end: performance.now() });
    }
  };
  return () => {
    methods[method] = original;
  };
}

/** Time the calls a run makes to its kernels, its agents and its store, until the returned undo. */
function instrument(): () => void {
  const sandbox = LocalSandbox.prototype;
  const undo = [
    timeCalls(sandbox, "execute", ([code]) => ({ part: cellPart(String(code)), step: null })),
    timeCalls(sandbox, "state", () => ({ part: "state", step: null })),
    timeCalls(sandbox, "checkpoint", () => ({ part: "checkpoint", step: null })),
    timeCalls(sandbox, "branch", () => ({ part: "branch", step: null })),
    timeCalls(InProcessBus.prototype, "request", ([role, message]) => {
      const m = message as { stepId?: number | null; step?: { id: number } };
      return { part: role as Role, step: m.stepId ?? m.step?.id ?? null };
    }),
    timeCalls(RunStore.prototype, "recordStep", ([step]) => ({
      part: "record",
      step: (step as { id: number }).id,
    })),
  ];
  return () => {
    for (const restore of undo) restore();
  };
}

function cellPart(code: string): Part {
  if (code === ACCEPT_CELL) return "accept";
  return code.startsWith(RECHECK_PREFIX) ? "recheck" : "cells";
}

/**
 * Give each span its step (the run is sequential: one kernel, one step at a time). Coder,
 * evaluator, reflector and recordStep name theirs; a kernel call belongs to the next agent
 * call that names a step (step k's calls come before its reflector); a plan to the previous
 * one (the plan made after step k lies between its start and the next start). recordStep
 * anchors nothing: the controller may record a step behind the loop, during the next step.
 */
function attribute(all: Span[]): Span[] {
  const ordered = [...all].sort((a, b) => a.start - b.start).map((s) => ({ ...s }));
  const anchor = (s: Span) => s.step !== null && s.part !== "record" && s.part !== "planner";
  let previous: number | null = null;
  for (const s of ordered) {
    if (s.part === "planner") s.step = previous;
    else if (anchor(s)) previous = s.step;
  }
  let next: number | null = null;
  for (const s of ordered.toReversed()) {
    if (anchor(s)) next = s.step;
    else if (s.step === null) s.step = next;
  }
  return ordered;
}

/** The parts the loop does not wait for: recordStep, when the controller records a step behind
 * the loop (its calls then overlap the next step's). */
function offPath(all: Span[]): Set<Part> {
  const records = all.filter((s) => s.part === "record");
  const behind = records.some((r) => all.some((t) => t !== r && t.start > r.start && t.start < r.end));
  return new Set<Part>(behind ? ["record"] : []);
}

/** One step of the run, as provenance recorded it. */
interface StepRow {
  id: number;
  templateId: string;
  kind: string;
  verdict: string;
  startedAt: number; // epoch ms
  durationS: number;
  kernelS: number; // its recorded executions
  code: string | null; // the last successful execution's code, if any
}

async function realRun(
  data: string,
  target: string,
  out: string,
): Promise<{ result: RunResult; wallS: number }> {
  const start = performance.now();
  const result = await run({ data, target, out, budgetS: "2m", maxSteps: 20, seed: 0, overwrite: true });
  return { result, wallS: (performance.now() - start) / 1000 };
}

async function rows(conn: Connection, cypher: string): Promise<Record<string, KuzuValue>[]> {
  const answer = await conn.query(cypher);
  const results = Array.isArray(answer) ? answer : [answer];
  try {
    return await results[0]!.getAll();
  } finally {
    for (const r of results) r.close();
  }
}

async function readSteps(runDir: string): Promise<StepRow[]> {
  const db = new Database(join(runDir, DATABASE_NAME), 0, true, true);
  const conn = new Connection(db);
  try {
    const executions = await rows(
      conn,
      `MATCH (s:Step)-[:EXECUTED]->(e:Execution)-[:HAS_CODE]->(c:Code)
       RETURN s.id AS step, e.ok AS ok, e.duration_s AS durationS, c.text AS code ORDER BY s.id, e.attempt`,
    );
    const kernel = new Map<number, number>();
    const code = new Map<number, string>(); // later attempts overwrite earlier ones
    for (const e of executions) {
      const step = Number(e.step);
      kernel.set(step, (kernel.get(step) ?? 0) + Number(e.durationS));
      if (e.ok === true) code.set(step, String(e.code));
    }
    const steps = await rows(
      conn,
      `MATCH (s:Step) RETURN s.id AS id, s.template_id AS templateId, s.kind AS kind, s.verdict AS verdict,
       s.started_at AS startedAt, s.duration_s AS durationS ORDER BY s.id`,
    );
    return steps.map((s) => ({
      id: Number(s.id),
      templateId: String(s.templateId),
      kind: String(s.kind),
      verdict: String(s.verdict),
      startedAt: Date.parse(String(s.startedAt)),
      durationS: Number(s.durationS),
      kernelS: kernel.get(Number(s.id)) ?? 0,
      code: code.get(Number(s.id)) ?? null,
    }));
  } finally {
    await conn.close();
    await db.close();
  }
}

/** A step's figures: from provenance, and its instrumented parts. */
interface StepCost {
  row: StepRow;
  parts: Record<Part, number>;
  calls: Record<Part, number>;
  /** duration minus recorded kernel time, as loop_overhead.py defines it */
  frameworkS: number;
  /** kernel work the loop asks for besides the step's cells: accept, recheck, checkpoint, branch */
  kernelExtraS: number;
  /** the step's end to the next step's start (recording, plan), if there is a next step */
  betweenS: number | null;
}

function stepCosts(steps: StepRow[], attributed: Span[]): StepCost[] {
  return steps.map((row, i) => {
    const parts = Object.fromEntries(PART_NAMES.map((p) => [p, 0])) as Record<Part, number>;
    const calls = { ...parts };
    for (const s of attributed.filter((span) => span.step === row.id)) {
      parts[s.part] += (s.end - s.start) / 1000;
      calls[s.part] += 1;
    }
    const after = steps[i + 1];
    return {
      row,
      parts,
      calls,
      frameworkS: row.durationS - row.kernelS,
      kernelExtraS: sum(KERNEL_EXTRA.map((p) => parts[p])),
      betweenS: after ? (after.startedAt - row.startedAt) / 1000 - row.durationS : null,
    };
  });
}

function reportFramework(result: RunResult, wallS: number, costs: StepCost[], background: Set<Part>): void {
  heading("2. framework time per step (step duration minus kernel execution time)");
  console.log(`run: ${costs.length} steps, stop reason: ${JSON.stringify(result.stop_reason)}`);
  console.log(`run wall time ${wallS.toFixed(2)} s (result.elapsed_s ${result.elapsed_s.toFixed(2)} s)`);
  const columns = ["step", "kernel", "framework", "kernel xtra", "fw proper", "to next"];
  console.log(`${"step".padStart(4)}  ${"template".padEnd(20)} ${"verdict".padEnd(9)}${cells(columns)}`);
  for (const c of costs) {
    const between = c.betweenS === null ? "-" : ms(c.frameworkS + c.betweenS);
    const figures = [
      c.row.durationS,
      c.row.kernelS,
      c.frameworkS,
      c.kernelExtraS,
      c.frameworkS - c.kernelExtraS,
    ];
    console.log(
      `${String(c.row.id).padStart(4)}  ${c.row.templateId.padEnd(20)} ${c.row.verdict.padEnd(9)}` +
        cells([...figures.map(ms), between]),
    );
  }
  console.log(
    "(kernel: its recorded executions; kernel xtra: accept, recheck, checkpoint and branch calls;" +
      "\n fw proper: framework minus kernel xtra; to next: start to next start minus kernel)",
  );
  reportParts(costs, background);
  const framework = costs.map((c) => c.frameworkS);
  const proper = costs.map((c) => c.frameworkS - c.kernelExtraS);
  const linked = costs.filter((c) => c.betweenS !== null);
  const gaps = linked.map((c) => c.frameworkS + c.betweenS!);
  const properGaps = linked.map((c) => c.frameworkS - c.kernelExtraS + c.betweenS!);
  console.log(
    `\nmedian framework time per step: ${ms(median(framework))}   (max ${ms(Math.max(...framework))},` +
      ` total ${sum(framework).toFixed(3)} s); target <= ${FRAMEWORK_TARGET_MS} ms: ${meets(framework)}`,
  );
  console.log(
    `median framework time per step, start to next start: ${ms(median(gaps))}` +
      `   (adds recording and the next plan; ${gaps.length} steps)`,
  );
  console.log(
    `without the kernel work it asks for (accept, recheck, checkpoint, branch): ${ms(median(proper))}` +
      `; start to next start ${ms(median(properGaps))}; target <= ${FRAMEWORK_TARGET_MS} ms: ` +
      `${meets(proper)} / ${meets(properGaps)}`,
  );
  const kernel = sum(costs.map((c) => c.row.kernelS));
  console.log(
    `kernel time ${kernel.toFixed(2)} s of ${sum(costs.map((c) => c.row.durationS)).toFixed(2)} s in steps`,
  );
}

/** Each part per step: inside the step's duration, then from its end to the next start. */
function reportParts(costs: StepCost[], background: Set<Part>): void {
  console.log(`\nwhere the time goes, per step (${costs.length} steps; a step without the call counts 0):`);
  console.log(`  ${"part".padEnd(44)} ${"work".padEnd(9)}${cells(["calls", "median", "mean", "total"])}`);
  const line = (label: string, work: string, values: number[], calls: number | string) =>
    console.log(
      `  ${label.padEnd(44)} ${work.padEnd(9)}${cells([String(calls), ms(median(values)), ms(mean(values)), `${sum(values).toFixed(3)} s`])}`,
    );
  const part = (p: Part, of: StepCost[]) => {
    line(
      PARTS[p].label,
      PARTS[p].work,
      of.map((c) => c.parts[p]),
      sum(of.map((c) => c.calls[p])),
    );
  };
  const onPath = PART_NAMES.filter((p) => !background.has(p));
  console.log(" inside the step (Step.duration_s):");
  const inStep = onPath.filter((p) => PARTS[p].inStep);
  for (const p of inStep) part(p, costs);
  const restIn = costs.map((c) => c.row.durationS - sum(inStep.map((p) => c.parts[p])));
  line("rest: controller code between the calls", "framework", restIn, "-");
  const linked = costs.filter((c) => c.betweenS !== null);
  console.log(` between the step's end and the next start (${linked.length} steps):`);
  const between = onPath.filter((p) => !PARTS[p].inStep);
  for (const p of between) part(p, linked);
  const restOut = linked.map((c) => c.betweenS! - sum(between.map((p) => c.parts[p])));
  line("rest: controller code (manifest, note, memory)", "framework", restOut, "-");
  if (background.size === 0) return;
  console.log(" off the loop's path (overlapping the calls that follow; not in the figures above):");
  for (const p of background) part(p, costs);
}

const meets = (values: number[]) => verdict(median(values) * 1000 <= FRAMEWORK_TARGET_MS);
const mean = (values: number[]) => (values.length > 0 ? sum(values) / values.length : Number.NaN);
const cells = (texts: string[]) => texts.map((t) => ` ${t.padStart(11)}`).join("");

// ---- 3. persistent kernel vs a fresh process per step -------------------------------------

/** One round of the persistent-vs-fresh comparison. */
interface SequenceTiming {
  startupS: number; // starting the persistent kernel
  persistentS: number; // the cells in the persistent kernel, start-up excluded
  stepS: number[]; // persistent time per step
  freshS: number; // all fresh processes, one per step
  freshStepS: number[]; // wall time of each fresh process
  stateS: number; // median Sandbox.state() on the namespace the steps leave
  trivialS: number; // median trivial cell, called in turn with state()
  errors: string[];
}

/** The cells each of the first `count` steps runs in the kernel, in order. */
function stepCells(steps: StepRow[], count: number): string[][] {
  return steps
    .slice(0, count)
    .map((s) => [...(s.code === null ? [] : [s.code]), ...(s.verdict === "accepted" ? [ACCEPT_CELL] : [])]);
}

async function runPersistent(steps: string[][], env: KernelEnv, workdir: string, data: string) {
  const start = performance.now();
  const sandbox = await createSandbox({
    workdir,
    pool: 0,
    python: env.python,
    runtime: env.runtime,
    readOnly: [data],
  });
  const ready = performance.now();
  const stepS: number[] = [];
  const errors: string[] = [];
  try {
    for (const [k, step] of steps.entries()) {
      const stepStart = performance.now();
      for (const code of step) {
        const execution = await sandbox.execute(code, { timeoutS: CELL_TIMEOUT_S });
        if (!execution.ok && execution.error) errors.push(`persistent step ${k}: ${execution.error.name}`);
      }
      stepS.push((performance.now() - stepStart) / 1000);
    }
    const probes = await probeCosts(sandbox);
    return { startupS: (ready - start) / 1000, persistentS: sum(stepS), stepS, ...probes, errors };
  } finally {
    await sandbox.close();
  }
}

/** What the state probe costs beyond a round trip, on a real namespace (the loop calls it every step). */
async function probeCosts(sandbox: LocalSandbox): Promise<{ stateS: number; trivialS: number }> {
  const state: number[] = [];
  const trivial: number[] = [];
  for (let i = 0; i < PROBES; i++) {
    state.push(await seconds(() => sandbox.state()));
    trivial.push(await seconds(() => sandbox.execute(TRIVIAL)));
  }
  return { stateS: median(state), trivialS: median(trivial) };
}

/** Wall seconds of one new Python process, and the last line of its stderr if it failed. */
function runPython(
  env: KernelEnv,
  argv: string[],
  cwd: string,
): Promise<{ seconds: number; failure: string }> {
  const freshEnv = { ...hostEnv(), MPLBACKEND: "Agg", PYTHONHASHSEED: "0", PYTHONPATH: env.runtime };
  return new Promise((done, fail) => {
    const start = performance.now();
    const child = spawn(env.python, argv, {
      cwd,
      env: freshEnv,
      stdio: ["ignore", "ignore", "pipe"],
      timeout: CELL_TIMEOUT_S * 2000,
    });
    let stderr = "";
    child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
      stderr = (stderr + chunk).slice(-4096);
    });
    child.once("error", fail);
    child.once("close", (code, signal) => {
      const lastLine = stderr.trim().split("\n").at(-1) ?? "";
      const failure = code === 0 ? "" : lastLine || `exit ${code ?? signal}`;
      done({ seconds: (performance.now() - start) / 1000, failure });
    });
  });
}

/** Seconds of each fresh process (step k re-runs steps 0..k), and errors. */
async function runFresh(steps: string[][], env: KernelEnv, workdir: string) {
  const cellsFile = join(workdir, "cells.json");
  writeFileSync(cellsFile, JSON.stringify(steps));
  const freshStepS: number[] = [];
  const errors: string[] = [];
  for (let k = 0; k < steps.length; k++) {
    const { seconds: s, failure } = await runPython(env, ["-c", FRESH_RUNNER, cellsFile, String(k)], workdir);
    freshStepS.push(s);
    if (failure) errors.push(`fresh step ${k}: ${failure}`);
  }
  return { freshStepS, freshS: sum(freshStepS), errors };
}

async function compareOnce(
  steps: string[][],
  env: KernelEnv,
  workdir: string,
  data: string,
): Promise<SequenceTiming> {
  const persistent = await runPersistent(steps, env, folder(workdir, "kernel"), data);
  const fresh = await runFresh(steps, env, folder(workdir, "fresh"));
  return { ...persistent, ...fresh, errors: [...persistent.errors, ...fresh.errors] };
}

/** Median seconds of a bare interpreter, and of one that only does the setup imports. */
async function processCosts(env: KernelEnv, cwd: string, repeats: number) {
  const bare: number[] = [];
  const imports: number[] = [];
  for (let i = 0; i < repeats; i++) bare.push((await runPython(env, ["-c", "pass"], cwd)).seconds);
  for (let i = 0; i < repeats; i++) imports.push((await runPython(env, ["-c", SETUP_IMPORTS], cwd)).seconds);
  return { bareS: median(bare), importsS: median(imports) };
}

function reportComparison(steps: StepRow[], rounds: SequenceTiming[], bareS: number, importsS: number): void {
  const n = rounds[0]!.stepS.length;
  heading(`3. ${n}-step sequence: persistent kernel vs a fresh Python process per step`);
  console.log(
    `${"round".padStart(5)} ${"kernel start".padStart(13)} ${"persistent".padStart(11)} ${"incl. start".padStart(12)}` +
      ` ${"fresh".padStart(9)} ${"ratio".padStart(7)} ${"ratio incl.".padStart(12)}`,
  );
  const withStartup = (r: SequenceTiming) => r.startupS + r.persistentS;
  for (const [i, r] of rounds.entries()) {
    console.log(
      `${String(i + 1).padStart(5)} ${r.startupS.toFixed(2).padStart(11)} s ${r.persistentS.toFixed(2).padStart(9)} s` +
        ` ${withStartup(r).toFixed(2).padStart(10)} s ${r.freshS.toFixed(2).padStart(7)} s` +
        ` ${(r.freshS / r.persistentS).toFixed(1).padStart(6)}x ${(r.freshS / withStartup(r)).toFixed(1).padStart(11)}x`,
    );
  }
  const persistent = median(rounds.map((r) => r.persistentS));
  const fresh = median(rounds.map((r) => r.freshS));
  const ratio = median(rounds.map((r) => r.freshS / r.persistentS));
  console.log(
    `median: persistent ${persistent.toFixed(2)} s, incl. kernel start-up ${median(rounds.map(withStartup)).toFixed(2)} s,` +
      ` fresh processes ${fresh.toFixed(2)} s`,
  );
  console.log(
    `median ratio fresh / persistent: ${ratio.toFixed(1)}x` +
      ` (incl. kernel start-up ${median(rounds.map((r) => r.freshS / withStartup(r))).toFixed(1)}x)` +
      `; target >= ${SPEEDUP_TARGET}x: ${verdict(ratio >= SPEEDUP_TARGET)}`,
  );

  console.log("\nper step (medians over rounds): persistent cell time | fresh process wall time");
  const perStep = Array.from({ length: n }, (_, k) => median(rounds.map((r) => r.stepS[k]!)));
  for (const [k, step] of steps.slice(0, n).entries()) {
    const proc = median(rounds.map((r) => r.freshStepS[k]!));
    console.log(
      `${String(k).padStart(4)}  ${step.templateId.padEnd(20)} ${perStep[k]!.toFixed(3).padStart(8)} s | ${proc.toFixed(3).padStart(7)} s`,
    );
  }
  const reruns = sum(perStep.map((_, k) => sum(perStep.slice(1, k + 1))));
  const pct = (part: number) => `${((100 * part) / fresh).toFixed(0)}% of fresh`;
  console.log("\nwhere the fresh-process time goes (estimates from the figures above):");
  console.log(
    `  bare interpreter start ${bareS.toFixed(3)} s; with the setup imports ${importsS.toFixed(3)} s` +
      ` -> ${n} processes x ${importsS.toFixed(3)} s = ${(n * importsS).toFixed(2)} s (${pct(n * importsS)})`,
  );
  console.log(
    `  cells of steps 1..k re-run in process k (persistent cell times): ${reruns.toFixed(2)} s (${pct(reruns)})`,
  );
  console.log(`  together ${(n * importsS + reruns).toFixed(2)} s of the measured ${fresh.toFixed(2)} s`);
  const warm = persistent - perStep[0]!;
  console.log(
    `  persistent without the setup step (imports and load, paid once): ${warm.toFixed(2)} s` +
      ` -> fresh / that = ${(fresh / warm).toFixed(1)}x`,
  );
  const judged = sum(perStep.filter((_, k) => !UNJUDGED.has(steps[k]!.kind)));
  console.log(
    `  judged (model-fitting) steps take ${judged.toFixed(2)} s of the persistent ${persistent.toFixed(2)} s` +
      ` (${((100 * judged) / persistent).toFixed(0)}%)`,
  );
  const state = median(rounds.map((r) => r.stateS));
  const trivial = median(rounds.map((r) => r.trivialS));
  console.log(
    `  Sandbox.state() on the namespace of these ${n} steps: ${ms(state)} (a trivial cell in turn with it` +
      ` ${ms(trivial)}): the probe's own work ${ms(state - trivial)}`,
  );
  const errors = rounds.flatMap((r) => r.errors);
  console.log(
    `errors: ${errors.length}${errors
      .slice(0, 10)
      .map((e) => `\n  ${e}`)
      .join("")}`,
  );
}

// ---- main ---------------------------------------------------------------------------------

/** This process's environment, without unset variables. */
function hostEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => entry[1] !== undefined),
  );
}

function folder(base: string, name: string): string {
  const path = join(base, name);
  mkdirSync(path, { recursive: true });
  return path;
}

/** Parts 2 and 3: the real run, and then its first steps' cells, persistent against fresh. */
async function frameworkAndContinuity(env: KernelEnv, base: string): Promise<void> {
  const uninstrument = instrument();
  const out = join(base, "run");
  const { result, wallS } = await realRun(args.data, args.target, out).finally(uninstrument);
  const steps = await readSteps(out);
  reportFramework(result, wallS, stepCosts(steps, attribute(spans)), offPath(spans));
  console.log(loadAverage());
  if (!args.parts.has("3")) return;
  const sequence = stepCells(steps, args.steps);
  const rounds: SequenceTiming[] = [];
  for (let i = 0; i < args.repeats; i++) {
    rounds.push(await compareOnce(sequence, env, folder(base, `round${i}`), args.data));
  }
  const { bareS, importsS } = await processCosts(env, base, Math.max(3, args.repeats));
  reportComparison(steps, rounds, bareS, importsS);
}

async function main(): Promise<void> {
  const started = performance.now();
  const env = await kernelPython();
  console.log(
    `node ${process.version}, kernel python ${env.python}, data ${args.data}, target "${args.target}"`,
  );
  console.log(`${availableParallelism()} CPUs, ${loadAverage()}`);
  const base = mkdtempSync("/var/tmp/dsassist-bench-");
  chmodSync(base, 0o755); // the kernel user must reach its work folder
  try {
    if (args.parts.has("1")) {
      await roundTrips(env, base, args.roundtrips);
      console.log(loadAverage());
    }
    if (args.parts.has("2")) await frameworkAndContinuity(env, base);
  } finally {
    rmSync(base, { recursive: true, force: true });
  }
  console.log(
    `\nbenchmark wall time ${((performance.now() - started) / 1000).toFixed(1)} s; ${loadAverage()}`,
  );
}

await main();
