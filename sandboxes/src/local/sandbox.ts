/**
 * A stateful kernel on this machine, confined (bubblewrap, its own user, limits), whose only
 * writable folder is the run's `work/`. A cell that misbehaves comes back as a failed
 * Execution with its cause named; a dead or runaway kernel is replaced by a warm one from
 * the pool, restored from the last checkpoint.
 */
import { closeSync, mkdirSync, mkdtempSync, openSync, realpathSync } from "node:fs";
import { constants as os, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Collector, nameLimit, openNoFollow } from "../collector.ts";
import { KernelClient, writeConnection } from "../jupyter/client.ts";
import type { Message } from "../jupyter/wire.ts";
import { KernelPool } from "../pool.ts";
import { type KernelEnv, kernelPython } from "../pyenv.ts";
import {
  Checkpoint,
  type ErrorInfo,
  type ExecuteOptions,
  type Execution,
  type Isolation,
  KernelState,
  Limits,
  type Sandbox,
  SandboxError,
} from "../types.ts";
import { Confinement } from "./isolation.ts";

/** pickling several GB takes minutes, not hours */
const CHECKPOINT_TIMEOUT_S = 1800;
const PROBES = "from dsassist_kernel.probes import _dsassist_checkpoint, _dsassist_restore, _dsassist_state";
/**
 * No history database (a sqlite write per cell, in the work folder), and no 0.5 ms sleep
 * before each reply: the idle status on iopub, which follows every output, is what we wait for.
 */
const KERNEL_FLAGS = ["--HistoryManager.enabled=False", "--IPythonKernel._execute_sleep=0"];

export interface LocalSandboxOptions {
  /** the kernel's working folder, and the only one it may write (the run's `work/`) */
  workdir: string;
  /** the checkpoint store (kernel-writable); default `<workdir>/.checkpoints` */
  checkpoints?: string;
  /** the kernel interpreter; default as `kernelPython()` finds it */
  python?: string;
  /** the kernel-side runtime folder; default the interpreter's */
  runtime?: string;
  limits?: Partial<Limits>;
  isolation?: Isolation;
  /** what the kernel must read besides its interpreter: the dataset, a model */
  readOnly?: string[];
  /** modules a pooled kernel imports while it boots (into sys.modules only) */
  preload?: string[];
  /** warm spare kernels kept for branches and recovery */
  pool?: number;
  /** more environment for the kernel (e.g. DSASSIST_CORES) */
  env?: Record<string, string>;
  /** the kernel user (when root); sandboxes sharing a work folder must share it */
  uid?: number;
  /** the kernel process's own output; default `<workdir>/kernel.log` */
  log?: string;
  startupTimeoutS?: number;
  /** after a timeout's interrupt, how long the cell has to stop before the kernel is killed */
  interruptGraceS?: number;
}

type Outcome = "done" | "died" | "timeout" | "killed";

export class LocalSandbox implements Sandbox {
  readonly workdir: string;
  readonly checkpoints: string;
  /** images go to `<run>/artifacts`, out of the kernel's reach */
  readonly artifacts: string;
  readonly limits: Limits;
  readonly confinement: Confinement;
  lastCheckpoint: Checkpoint | undefined;
  private kernel: KernelClient | null = null;
  private pool: KernelPool | null = null;
  private kernelEnv: KernelEnv | undefined;
  private closed = false;

  constructor(private readonly options: LocalSandboxOptions) {
    mkdirSync(options.workdir, { recursive: true });
    this.workdir = realpathSync(options.workdir);
    this.checkpoints = resolve(options.checkpoints ?? join(this.workdir, ".checkpoints"));
    this.artifacts = join(dirname(this.workdir), "artifacts");
    this.limits = Limits.parse(options.limits ?? {});
    this.confinement = new Confinement({
      workdir: this.workdir,
      limits: this.limits,
      isolation: options.isolation ?? "auto",
      readOnly: options.readOnly,
      uid: options.uid,
      env: options.env,
    });
  }

  // ---- lifecycle ----------------------------------------------------------------------------

  /** Take a kernel (a warm one if the pool has it) and top the pool up; a no-op while one runs. */
  async start(): Promise<void> {
    if (this.alive) return;
    this.closed = false;
    await this.take();
  }

  /** A kernel from the pool; none once the sandbox is closed, even while one was booting. */
  private async take(): Promise<void> {
    this.kernelEnv ??= await this.resolveKernelEnv();
    if (this.closed) throw new SandboxError("the sandbox is closed");
    this.confinement.prepare(this.workdir, this.checkpoints);
    this.pool ??= new KernelPool(() => this.launch(), this.options.pool ?? 1, this.startupTimeoutMs);
    await this.kernel?.close(); // a dead one
    const kernel = await this.pool.take();
    if (this.closed) {
      // closed while it booted (a run stopped during a recovery): it must not outlive the run
      await kernel.close();
      throw new SandboxError("the sandbox is closed");
    }
    this.kernel = kernel;
  }

  async close(): Promise<void> {
    this.closed = true;
    const [kernel, pool] = [this.kernel, this.pool];
    this.kernel = null;
    this.pool = null;
    await Promise.all([kernel?.close(), pool?.close()]);
  }

  /** A fresh kernel from the pool: the namespace is lost. */
  async restart(): Promise<void> {
    if (this.closed) throw new SandboxError("the sandbox is closed");
    await this.kernel?.close();
    this.kernel = null;
    await this.take();
  }

  get alive(): boolean {
    return this.kernel?.alive ?? false;
  }

  /** Another sandbox (not started) in the same folders, run by the same user, with the same limits. */
  sibling(): LocalSandbox {
    const twin = new LocalSandbox({ ...this.options, uid: this.confinement.uid });
    twin.kernelEnv = this.kernelEnv;
    return twin;
  }

  /** Wait until the pool's spares have booted. */
  async settle(): Promise<void> {
    await this.pool?.settle();
  }

  // ---- running code -------------------------------------------------------------------------

  async execute(code: string, options: ExecuteOptions = {}): Promise<Execution> {
    if (!this.alive) await this.restart();
    const start = performance.now();
    const collector = new Collector(this.artifacts, this.limits.outputKb * 1024);
    const outcome = await this.run(code, collector, options.timeoutS);
    collector.error = await this.judge(outcome, collector.error, options.timeoutS);
    return collector.result((performance.now() - start) / 1000);
  }

  /** The error an outcome comes back with, after recovering from whatever it did to the kernel. */
  private async judge(
    outcome: Outcome,
    error: ErrorInfo | undefined,
    timeoutS?: number,
  ): Promise<ErrorInfo | undefined> {
    if (outcome === "timeout" || outcome === "killed") {
      const timeout = {
        name: "Timeout",
        value: `the cell ran longer than ${Number(timeoutS?.toFixed(1))}s and was interrupted`,
        traceback: [],
      };
      if (outcome === "killed") timeout.value += await this.recover(); // the interrupt did not work
      return timeout;
    }
    if (outcome === "died") {
      const cause = this.deathCause();
      cause.value += await this.recover();
      return cause;
    }
    if (error === undefined) return undefined;
    const named = nameLimit(error);
    // forked children may still run, and hold the process table: end them all
    if (named.name === "ProcessLimit") named.value += await this.recover();
    return named;
  }

  /** Run one cell to its idle status, its kernel's death, or the timeout (then the interrupt's grace). */
  private async run(code: string, collector: Collector, timeoutS?: number): Promise<Outcome> {
    const kernel = this.current();
    const content = { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false };
    const request = kernel.execute({ ...content, stop_on_error: true }, collector.handle);
    const ended = (idle: Outcome) =>
      Promise.race([request.idle.then(() => idle), kernel.exited.then((): Outcome => "died")]);
    try {
      const first = await within<Outcome>(ended("done"), timeoutS, "timeout");
      if (first !== "timeout") return first;
      kernel.interrupt().end();
      const second = await within<Outcome>(ended("timeout"), this.options.interruptGraceS ?? 5, "killed");
      return second === "died" ? "killed" : second;
    } finally {
      request.end();
    }
  }

  /** Replace a dead or runaway kernel, restore the last checkpoint, and say so. */
  private async recover(): Promise<string> {
    await this.restart();
    const last = this.lastCheckpoint;
    if (last === undefined) return "; a fresh kernel replaced it (no checkpoint yet)";
    try {
      await this.restore(last);
    } catch (error) {
      return `; a fresh kernel replaced it, but restoring ${last.label} failed: ${(error as Error).message}`;
    }
    return `; a fresh kernel replaced it, restored from checkpoint ${last.label}`;
  }

  /** Why the kernel process ended, from its exit status (bubblewrap passes it on). */
  private deathCause(): ErrorInfo {
    const status = this.kernel?.exitStatus;
    const code = status?.code ?? null;
    const signal = status?.signal ? os.signals[status.signal] : code !== null && code > 128 ? code - 128 : 0;
    if (signal === os.signals.SIGXCPU) {
      return {
        name: "CPULimit",
        value: `the kernel used its ${this.limits.cpuS}s of CPU time`,
        traceback: [],
      };
    }
    const how =
      signal === os.signals.SIGSEGV
        ? "a segmentation fault"
        : signal === os.signals.SIGKILL
          ? "SIGKILL (out of memory?)"
          : signal
            ? `signal ${signal}`
            : `exit status ${code}`;
    return { name: "KernelDied", value: `the kernel died while running the cell: ${how}`, traceback: [] };
  }

  // ---- state and checkpoints ----------------------------------------------------------------

  /** Names, types, shapes and dtypes of what the kernel holds, and its imports. */
  async state(): Promise<KernelState> {
    try {
      return KernelState.parse(await this.call(this.startupTimeoutMs / 1000, "_dsassist_state"));
    } catch {
      return KernelState.parse({});
    }
  }

  /**
   * Save the namespace; it becomes the state a dead kernel is restored to. `replay` are the
   * cells that rebuild it: used for what cannot be pickled, and for everything when the saved
   * objects are gone.
   */
  async checkpoint(label: string, replay: string[] = []): Promise<Checkpoint> {
    const start = performance.now();
    const saved = await this.call(CHECKPOINT_TIMEOUT_S, "_dsassist_checkpoint", this.checkpoints);
    const parsed = Checkpoint.safeParse({ ...(saved as object), label, replay });
    if (!parsed.success) throw new SandboxError(`the kernel's checkpoint ${label} is malformed`);
    const checkpoint = { ...parsed.data, durationS: (performance.now() - start) / 1000 };
    this.lastCheckpoint = checkpoint;
    return checkpoint;
  }

  /**
   * Bring a checkpoint's namespace into the current kernel. What cannot be pickled is rebuilt
   * by replaying the cells first; if the saved objects are missing or corrupt, the whole
   * namespace is rebuilt by replay in a fresh kernel. Throws SandboxError when neither works.
   */
  async restore(checkpoint: Checkpoint): Promise<void> {
    if (checkpoint.unpicklable.length > 0) await this.replay(checkpoint);
    try {
      await this.call(
        CHECKPOINT_TIMEOUT_S,
        "_dsassist_restore",
        this.checkpoints,
        JSON.stringify(checkpoint),
      );
    } catch (error) {
      if (!(error instanceof SandboxError) || checkpoint.replay.length === 0) throw error;
      await this.restart();
      await this.replay(checkpoint);
    }
    this.lastCheckpoint = checkpoint;
  }

  /** Continue from an earlier state: a fresh kernel from the pool, restored to `checkpoint`. */
  async branch(checkpoint: Checkpoint): Promise<void> {
    await this.restart();
    await this.restore(checkpoint);
  }

  private async replay(checkpoint: Checkpoint): Promise<void> {
    for (const cell of checkpoint.replay) {
      const collector = new Collector(this.artifacts, this.limits.outputKb * 1024);
      const outcome = await this.run(cell, collector);
      const error = outcome === "done" ? collector.error : { name: "KernelDied", value: "the kernel died" };
      if (error !== undefined) {
        throw new SandboxError(
          `replaying checkpoint ${checkpoint.label} failed: ${error.name}: ${error.value}`,
        );
      }
    }
  }

  /** The JSON value of `fn(args...)`, evaluated silently in the kernel (a probe's Reply). */
  private async call(timeoutS: number, fn: string, ...args: string[]): Promise<unknown> {
    const kernel = this.current();
    const expression = `${fn}(${args.map((arg) => JSON.stringify(arg)).join(", ")})`;
    const content = {
      code: "",
      silent: true,
      store_history: false,
      allow_stdin: false,
      stop_on_error: false,
    };
    const request = kernel.execute({ ...content, user_expressions: { value: expression } });
    try {
      const died = kernel.exited.then(() => "died" as const);
      const reply = await within<Message | "died" | "timeout">(
        Promise.race([request.reply, died]),
        timeoutS,
        "timeout",
      );
      if (reply === "timeout") throw new SandboxError(`the kernel did not answer ${fn} within ${timeoutS}s`);
      if (reply === "died") throw new SandboxError(`the kernel died during ${fn}`);
      const value = (reply.content.user_expressions as Record<string, Record<string, unknown>> | undefined)
        ?.value;
      if (value?.status !== "ok") {
        throw new SandboxError(`${fn} failed in the kernel: ${value?.ename}: ${value?.evalue}`);
      }
      return JSON.parse(String((value.data as Record<string, unknown>)["text/plain"]));
    } finally {
      request.end();
    }
  }

  // ---- kernels ------------------------------------------------------------------------------

  private current(): KernelClient {
    if (this.kernel === null) throw new SandboxError("the sandbox is not started");
    return this.kernel;
  }

  private get startupTimeoutMs(): number {
    return (this.options.startupTimeoutS ?? 60) * 1000;
  }

  private async resolveKernelEnv(): Promise<KernelEnv> {
    const env = await kernelPython({ python: this.options.python });
    return this.options.runtime ? { ...env, runtime: resolve(this.options.runtime) } : env;
  }

  /** Start one confined kernel process on its own socket folder (it boots in the background). */
  private launch(): KernelClient {
    const kernel = this.kernelEnv as KernelEnv;
    const socketDir = mkdtempSync(join(tmpdir(), "dsassist-kernel-"));
    const connection = writeConnection(socketDir);
    // the last kernel may have emptied its folder; the new one must read its connection file
    this.confinement.prepare(this.workdir, this.checkpoints, socketDir);
    const command = this.confinement.wrap(
      [kernel.python, "-m", "ipykernel_launcher", "-f", connection.file, ...KERNEL_FLAGS, this.execLines()],
      { readOnly: [...kernel.prefixes, kernel.runtime], writable: [this.checkpoints, socketDir] },
    );
    const logFd =
      openNoFollow(this.options.log ?? join(this.workdir, "kernel.log")) ?? openSync("/dev/null", "a");
    try {
      return KernelClient.launch(connection, {
        command,
        env: this.confinement.env(kernel.runtime),
        cwd: this.workdir,
        logFd,
      });
    } finally {
      closeSync(logFd);
    }
  }

  /**
   * Run at boot, before the kernel answers: the probes, then the preloaded modules, imported
   * into sys.modules only. IPython hides what its exec_lines define from the user's namespace.
   */
  private execLines(): string {
    const preload = this.options.preload ?? [];
    const imports =
      preload.length > 0
        ? `\nfor _m in (${preload.map((m) => JSON.stringify(m)).join(", ")},): __import__(_m)`
        : "";
    return `--IPKernelApp.exec_lines=${PROBES}${imports}`;
  }
}

/** `promise`, or `fallback` once `seconds` have passed (never, for undefined). */
async function within<T>(promise: Promise<T>, seconds: number | undefined, fallback: T): Promise<T> {
  if (seconds === undefined) return promise;
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), seconds * 1000);
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
