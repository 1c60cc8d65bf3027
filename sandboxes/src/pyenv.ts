/**
 * The Python interpreter that kernels run on, set up by DSAssist itself on first use.
 *
 * In order: an explicit interpreter (`--python`), else `DSASSIST_PYTHON`, else a virtual
 * environment cached under `${XDG_CACHE_HOME:-~/.cache}/dsassist/kernel-<hash>/`, made with
 * `python3 -m venv` and `pip install -r sandboxes/python/requirements.txt`. The hash covers the
 * requirements and the Python version, so changing either sets up a fresh environment.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { SandboxError } from "./types.ts";

/** sandboxes/python: the kernel-side runtime (`dsassist_kernel`) kernels import. */
export const RUNTIME = fileURLToPath(new URL("../python", import.meta.url)).replace(/\/$/, "");
export const REQUIREMENTS = path.join(RUNTIME, "requirements.txt");
/** written last, so that an install killed half way is redone, not trusted */
const MARKER = ".dsassist-complete";
/** the file in the venv's site-packages that puts the runtime on `sys.path` of any kernel */
const PTH = "dsassist_kernel.pth";
const MIN_VERSION = [3, 10] as const;
const LOCK_POLL_MS = 200;
/** a lock older than this belongs to an install that can no longer be running */
const LOCK_STALE_MS = 60 * 60 * 1000;
const TAIL_LINES = 20;
/** what a kernel imports at once; module name -> the package to install */
const REQUIRED: Record<string, string> = {
  ipykernel: "ipykernel",
  numpy: "numpy",
  pandas: "pandas",
  sklearn: "scikit-learn",
};
const FIX = "point --python at an interpreter with ipykernel, numpy, pandas and scikit-learn";

export interface KernelEnv {
  /** absolute path of the interpreter (a venv's own `bin/python`, not the file it links to) */
  python: string;
  /** absolute path of sandboxes/python, to put on the kernel's PYTHONPATH */
  runtime: string;
  /** the interpreter's `sys.prefix` (the venv folder for a venv) */
  prefix: string;
  /** every folder the interpreter needs (venv, base installation; also resolved through
   * symlinks): what a sandbox must expose read-only */
  prefixes: string[];
}

export interface KernelEnvOptions {
  /** an interpreter to use as it is (the `--python` flag or config key) */
  python?: string;
  /** told once, when the environment is set up (it takes minutes) */
  onProgress?: (line: string) => void;
  /** the requirements of the cached environment (tests use a tiny one) */
  requirements?: string;
  /** the interpreter that creates the cached environment */
  basePython?: string;
  /** where cached environments live */
  cacheDir?: string;
}

/** The kernel interpreter cannot be had; the message is one line and says the fix. */
export class KernelEnvError extends SandboxError {
  override name = "KernelEnvError";
  /** what the failing tool printed last, for a log or --verbose */
  readonly detail: string | undefined;

  constructor(message: string, detail?: string) {
    super(message);
    this.detail = detail;
  }
}

export async function kernelPython(options: KernelEnvOptions = {}): Promise<KernelEnv> {
  if (options.python) return explicit(options.python, "--python");
  const fromEnv = process.env.DSASSIST_PYTHON;
  if (fromEnv) return explicit(fromEnv, "DSASSIST_PYTHON");
  return cached(options);
}

/** What `dsassist doctor` says of the kernel interpreter, without setting anything up. */
export async function describeKernelPython(): Promise<{ ok: boolean; text: string; fix?: string }> {
  try {
    const fromEnv = process.env.DSASSIST_PYTHON;
    if (fromEnv)
      return { ok: true, text: `${(await explicit(fromEnv, "DSASSIST_PYTHON")).python} (DSASSIST_PYTHON)` };
    const base = await basePython({});
    const folder = await folderFor(base, {});
    const found = await ready(folder);
    const text = found
      ? `${path.join(folder, "bin", "python")} (managed environment, Python ${found.version.split(" ")[0]})`
      : `${base.command} ${base.version.split(" ")[0]}: the kernel environment is set up on the first run, in ${folder}`;
    return { ok: true, text };
  } catch (error) {
    if (!(error instanceof KernelEnvError)) throw error;
    return { ok: false, text: error.message, fix: "install Python 3.10+ with venv, or give --python" };
  }
}

/** The folder of the cached environment for these options (whether it exists or not). */
export async function cachedEnvFolder(options: KernelEnvOptions = {}): Promise<string> {
  const base = await basePython(options);
  return folderFor(base, options);
}

// ---- an interpreter given by the user --------------------------------------------------

async function explicit(python: string, source: string): Promise<KernelEnv> {
  const found = await probe(python, Object.keys(REQUIRED));
  if (found === "missing") {
    throw new KernelEnvError(`the kernel interpreter ${python} (${source}) does not exist: ${FIX}`);
  }
  if (found === "broken") throw new KernelEnvError(`${python} (${source}) is not a working Python: ${FIX}`);
  checkVersion(found, `${python} (${source})`);
  if (found.missing.length > 0) {
    const packages = found.missing.map((m) => REQUIRED[m] ?? m).join(", ");
    throw new KernelEnvError(
      `the kernel interpreter ${python} (${source}) lacks ${packages}: ` +
        `run ${python} -m pip install -r ${REQUIREMENTS}, or unset ${source} to let DSAssist set one up`,
    );
  }
  return envOf(found);
}

// ---- the cached environment ------------------------------------------------------------

async function cached(options: KernelEnvOptions): Promise<KernelEnv> {
  const base = await basePython(options);
  const folder = await folderFor(base, options);
  let found = await ready(folder);
  if (found === undefined) {
    await withLock(`${folder}.lock`, async () => {
      if ((await ready(folder)) !== undefined) return; // another process set it up meanwhile
      options.onProgress?.(`setting up the kernel environment (first run, about 2 minutes): ${folder}`);
      await install(base, folder, options.requirements ?? REQUIREMENTS);
    });
    found = await ready(folder);
    if (found === undefined) throw new KernelEnvError(`the kernel environment ${folder} does not start`);
  }
  await linkRuntime(found.purelib);
  return envOf(found);
}

/** The interpreter that makes venvs, as the command to run (a pyenv shim stays a shim). */
async function basePython(options: KernelEnvOptions): Promise<Base> {
  const python = options.basePython ?? "python3";
  const found = await probe(python, []);
  if (typeof found === "string") {
    throw new KernelEnvError(
      `no ${python} found to set up the kernel environment: ` +
        "install Python 3.10+ (apt-get install python3 python3-venv) or point --python at one",
    );
  }
  checkVersion(found, python);
  return { command: python, version: found.version };
}

interface Base {
  command: string;
  version: string;
}

async function folderFor(base: Base, options: KernelEnvOptions): Promise<string> {
  const requirements = await fs.readFile(options.requirements ?? REQUIREMENTS, "utf8");
  const hash = createHash("sha256").update(`${requirements}\0${base.version}`).digest("hex").slice(0, 12);
  const cacheDir = options.cacheDir ?? (process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"));
  return path.join(path.resolve(cacheDir), "dsassist", `kernel-${hash}`);
}

/** The environment's interpreter, if the folder holds a complete one that runs. */
async function ready(folder: string): Promise<Probe | undefined> {
  const complete = await fs.stat(path.join(folder, MARKER)).then(
    () => true,
    () => false,
  );
  if (!complete) return undefined;
  const found = await probe(path.join(folder, "bin", "python"), []);
  return typeof found === "string" ? undefined : found;
}

async function install(base: Base, folder: string, requirements: string): Promise<void> {
  await fs.rm(folder, { recursive: true, force: true });
  const venv = await run(base.command, ["-m", "venv", folder]);
  if (venv.code !== 0) {
    if (/ensurepip|No module named venv/.test(venv.output)) {
      throw new KernelEnvError(
        `the Python venv module is missing: apt-get install python3-venv, or ${FIX}`,
        venv.output,
      );
    }
    throw new KernelEnvError(`creating ${folder} failed: ${lastLine(venv.output)}`, venv.output);
  }
  const python = path.join(folder, "bin", "python");
  const pip = await run(python, ["-m", "pip", "install", "--disable-pip-version-check", "-r", requirements]);
  if (pip.code !== 0) {
    throw new KernelEnvError(
      `installing the kernel packages failed (${lastLine(pip.output)}): run again once fixed, or ${FIX}`,
      pip.output,
    );
  }
  await fs.writeFile(path.join(folder, MARKER), `${new Date().toISOString()}\n`);
}

/**
 * Point the environment's `.pth` at this checkout's runtime, so that `import dsassist_kernel`
 * works in any kernel of it, a notebook opened outside DSAssist too. Rewritten when another
 * checkout shares the cached environment; kernels DSAssist starts get the runtime on their
 * PYTHONPATH as well, which comes first.
 */
async function linkRuntime(purelib: string): Promise<void> {
  const file = path.join(purelib, PTH);
  const current = await fs.readFile(file, "utf8").catch(() => "");
  if (current === `${RUNTIME}\n`) return;
  const temporary = `${file}.${process.pid}`;
  await fs.writeFile(temporary, `${RUNTIME}\n`);
  await fs.rename(temporary, file);
}

// ---- one install at a time -------------------------------------------------------------

/** Run `work` holding `lock` (a file with the owner's pid); a second process waits its turn. */
async function withLock(lock: string, work: () => Promise<void>): Promise<void> {
  await fs.mkdir(path.dirname(lock), { recursive: true });
  for (;;) {
    try {
      await fs.writeFile(lock, String(process.pid), { flag: "wx" });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    await removeIfStale(lock);
    await new Promise((resolve) => setTimeout(resolve, LOCK_POLL_MS));
  }
  try {
    await work();
  } finally {
    await fs.rm(lock, { force: true });
  }
}

/** A lock whose owner died (killed during an install) is removed, so the install is redone. */
async function removeIfStale(lock: string): Promise<void> {
  const [text, stat] = await Promise.all([
    fs.readFile(lock, "utf8").catch(() => ""),
    fs.stat(lock).catch(() => undefined),
  ]);
  if (stat === undefined) return;
  const owner = Number(text);
  const old = Date.now() - stat.mtimeMs > LOCK_STALE_MS;
  if (old || (owner > 0 && !alive(owner))) {
    // re-read just before removing: another waiter may have taken the lock meanwhile
    const again = await fs.readFile(lock, "utf8").catch(() => "");
    if (again === text) await fs.rm(lock, { force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ESRCH";
  }
}

// ---- asking an interpreter about itself ------------------------------------------------

interface Probe {
  executable: string;
  version: string;
  versionInfo: number[];
  prefixes: string[];
  purelib: string;
  /** required modules it cannot find */
  missing: string[];
}

/** find_spec, not import: it says whether the packages are installed in milliseconds. */
const PROBE = `
import importlib.util, json, sys, sysconfig
print(json.dumps({
    "executable": sys.executable, "version": sys.version, "versionInfo": list(sys.version_info[:3]),
    "prefixes": [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix],
    "purelib": sysconfig.get_paths()["purelib"],
    "missing": [m for m in sys.argv[1:] if importlib.util.find_spec(m) is None],
}))
`;

async function probe(python: string, modules: string[]): Promise<Probe | "missing" | "broken"> {
  const result = await run(python, ["-c", PROBE, ...modules]);
  if (result.failedToStart === "ENOENT") return "missing";
  const json = result.output.split("\n").findLast((line) => line.startsWith("{"));
  if (result.code !== 0 || json === undefined) return "broken";
  try {
    return JSON.parse(json) as Probe;
  } catch {
    return "broken";
  }
}

function checkVersion(found: Probe, what: string): void {
  const [major = 0, minor = 0] = found.versionInfo;
  if (major < MIN_VERSION[0] || (major === MIN_VERSION[0] && minor < MIN_VERSION[1])) {
    throw new KernelEnvError(
      `${what} is Python ${found.versionInfo.join(".")}; kernels need 3.10+: install a newer one or point --python at one`,
    );
  }
}

async function envOf(found: Probe): Promise<KernelEnv> {
  const real = await Promise.all(found.prefixes.map((p) => fs.realpath(p).catch(() => p)));
  return {
    python: found.executable,
    runtime: RUNTIME,
    prefix: found.prefixes[0] ?? path.dirname(path.dirname(found.executable)),
    prefixes: [...new Set([...found.prefixes, ...real])],
  };
}

// ---- processes -------------------------------------------------------------------------

interface Ran {
  code: number;
  /** stdout and stderr together, the last lines only */
  output: string;
  /** the error code when the program could not be started (ENOENT, EACCES) */
  failedToStart?: string;
}

function run(command: string, args: string[]): Promise<Ran> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const keep = (chunk: Buffer) => {
      output = (output + chunk.toString())
        .split("\n")
        .slice(-TAIL_LINES - 1)
        .join("\n");
    };
    child.stdout.on("data", keep);
    child.stderr.on("data", keep);
    child.on("error", (error: NodeJS.ErrnoException) =>
      resolve({ code: -1, output, failedToStart: error.code ?? "unknown" }),
    );
    child.on("close", (code) => resolve({ code: code ?? 1, output: output.trimEnd() }));
  });
}

function lastLine(output: string): string {
  const lines = output.trim().split("\n");
  return lines.findLast((l) => l.startsWith("ERROR:")) ?? lines.at(-1) ?? "no output";
}
