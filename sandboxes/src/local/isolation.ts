/**
 * How a local kernel process is confined: bubblewrap, an unprivileged user, resource limits,
 * a clean environment. The kernel's command line is wrapped as
 * `bwrap [mounts] -- setpriv [to the kernel user] -- prlimit [limits] -- python -m ipykernel_launcher ...`,
 * each layer only where it applies (bubblewrap present, running as root, a limit set).
 */
import { spawnSync } from "node:child_process";
import { existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, realpathSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, relative, sep } from "node:path";
import { type Isolation, type Limits, SandboxError } from "../types.ts";

/**
 * Kernels run as users that own nothing and can read only what everyone can. Each sandbox
 * gets its own uid, so that the process limit (counted per user) is its own too.
 */
export const FIRST_KERNEL_UID = 200_000;
let uids = 0;

export function nextKernelUid(): number {
  return FIRST_KERNEL_UID + ((process.pid * 1024 + uids++) % 1_000_000);
}

/** What a kernel may inherit; everything else (API keys, tokens, cloud credentials) stays out. */
const ENV_ALLOW = new Set([
  "PATH",
  "LANG",
  "LANGUAGE",
  "TZ",
  "TERM",
  "OPENBLAS_CORETYPE",
  "OPENBLAS_L2_SIZE",
]);
const ENV_ALLOW_PREFIX = "LC_";

let bubblewrap: boolean | undefined;

/** bwrap is installed and may create namespaces here (some containers forbid it); probed once. */
export function bubblewrapWorks(): boolean {
  bubblewrap ??=
    spawnSync("bwrap", ["--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"], { stdio: "ignore" })
      .status === 0;
  return bubblewrap;
}

let warned = false;

export interface ConfinementOptions {
  /** the kernel's working and only writable folder (besides `writable`) */
  workdir: string;
  limits: Limits;
  isolation: Isolation;
  /** what the kernel must read besides its interpreter (the dataset) */
  readOnly?: string[];
  /** the kernel user; kernels sharing a folder must share it */
  uid?: number;
  /** more variables for the kernel (e.g. DSASSIST_CORES) */
  env?: Record<string, string>;
}

export class Confinement {
  readonly bwrap: boolean;
  /** only inside bubblewrap: outside it the interpreter may sit in root's private home */
  readonly dropPrivileges: boolean;
  readonly uid: number;

  constructor(private readonly options: ConfinementOptions) {
    if (!["auto", "strict", "none"].includes(options.isolation)) {
      throw new SandboxError(
        `isolation must be auto, strict or none, not ${JSON.stringify(options.isolation)}`,
      );
    }
    this.bwrap = options.isolation !== "none" && bubblewrapWorks();
    if (options.isolation === "strict" && !this.bwrap) {
      throw new SandboxError(
        "isolation 'strict' needs bubblewrap, which is not available here (apt-get install bubblewrap)",
      );
    }
    if (options.isolation === "auto" && !this.bwrap && !warned) {
      warned = true;
      process.emitWarning(
        "bubblewrap is not available: kernels run without filesystem and network isolation",
      );
    }
    const euid = process.geteuid?.() ?? 0;
    this.dropPrivileges = euid === 0 && this.bwrap;
    this.uid = this.dropPrivileges ? (options.uid ?? nextKernelUid()) : euid;
  }

  /**
   * Make the folders the kernel writes to, and all in them, its own. All in them: a resumed
   * run's checkpoints were written by an earlier kernel's user. Never through a link the
   * kernel may have planted (lchown, and no descent into links).
   */
  prepare(...folders: string[]): void {
    for (const folder of folders) {
      mkdirSync(folder, { recursive: true });
      if (this.dropPrivileges) this.chownTree(folder);
    }
  }

  private chownTree(path: string): void {
    const stat = lstatSync(path);
    if (stat.uid !== this.uid) lchownSync(path, this.uid, this.uid);
    if (!stat.isDirectory()) return;
    for (const name of readdirSync(path)) this.chownTree(join(path, name));
  }

  /** The kernel's environment; `runtime` (the dsassist_kernel folder) goes on PYTHONPATH. */
  env(runtime: string): Record<string, string> {
    const env: Record<string, string> = {};
    for (const [name, value] of Object.entries(process.env)) {
      if (value !== undefined && (ENV_ALLOW.has(name) || name.startsWith(ENV_ALLOW_PREFIX)))
        env[name] = value;
    }
    const { workdir, limits } = this.options;
    env.PATH ??= "/usr/local/bin:/usr/bin:/bin";
    Object.assign(env, {
      HOME: workdir,
      PYTHONHASHSEED: "0",
      MPLCONFIGDIR: join(workdir, ".config"),
      PYTHONPATH: runtime,
    });
    if (limits.cores !== null) {
      // kernels on parallel branches share the machine's cores
      const threads = String(limits.cores);
      Object.assign(env, {
        DSASSIST_CORES: threads,
        OMP_NUM_THREADS: threads,
        OPENBLAS_NUM_THREADS: threads,
      });
    }
    return { ...env, ...this.options.env };
  }

  /**
   * `command` inside every layer that applies. Under bubblewrap the kernel sees `readOnly`
   * (the interpreter's folders, the runtime) and may write the workdir and `writable`.
   */
  wrap(command: string[], mounts: { readOnly: string[]; writable: string[] }): string[] {
    const prefix: string[] = [];
    if (this.bwrap) prefix.push(...this.bwrapArgs(mounts.readOnly, mounts.writable));
    if (this.dropPrivileges) {
      prefix.push("setpriv", `--reuid=${this.uid}`, `--regid=${this.uid}`, "--clear-groups", "--");
    } else if (!this.bwrap) {
      // bubblewrap's --die-with-parent is missing: the kernel dies with this process all the same
      prefix.push("setpriv", "--pdeathsig=KILL", "--");
    }
    return [...prefix, ...this.prlimitArgs(), ...command];
  }

  private prlimitArgs(): string[] {
    const { memoryMb, cpuS, processes, fileMb } = this.options.limits;
    const args: string[] = [];
    if (memoryMb !== null) args.push(`--as=${memoryMb * 1024 * 1024}`);
    // soft below hard: SIGXCPU names the limit before SIGKILL would end the kernel
    if (cpuS !== null) args.push(`--cpu=${cpuS}:${cpuS + 2}`);
    if (processes !== null) args.push(`--nproc=${processes}`);
    if (fileMb !== null) args.push(`--fsize=${fileMb * 1024 * 1024}`);
    return args.length > 0 ? ["prlimit", ...args, "--"] : [];
  }

  private bwrapArgs(readOnly: string[], writable: string[]): string[] {
    const home = realpathSync(homedir());
    const masked = ["/tmp", home]; // a private /tmp, and no access to the user's home
    const args = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"];
    args.push("--perms", "1777", "--tmpfs", "/tmp", "--perms", "0755", "--tmpfs", home);
    // a private /dev/shm: joblib's worker processes need POSIX semaphores (without them
    // scikit-learn's n_jobs silently runs in serial)
    args.push("--perms", "1777", "--tmpfs", "/dev/shm");
    for (const path of [...readOnly, ...(this.options.readOnly ?? [])])
      args.push(...expose(path, masked, "--ro-bind"));
    for (const path of [this.options.workdir, ...writable]) args.push(...expose(path, masked, "--bind"));
    args.push("--unshare-net", "--unshare-pid", "--unshare-ipc", "--unshare-uts");
    // ipykernel exits when its parent's pid changes, as it does across the pid namespace;
    // --die-with-parent ends the kernel with the controller instead
    args.push("--unsetenv", "JPY_PARENT_PID", "--die-with-parent", "--new-session");
    args.push("--chdir", this.options.workdir, "--");
    return args;
  }
}

/** Mount `path` into the sandbox; under a masked folder, create its parents traversable first. */
function expose(path: string, masked: string[], how: "--ro-bind" | "--bind"): string[] {
  if (!existsSync(path)) return [];
  const target = realpathSync(path);
  const root = masked.find((m) => isWithin(target, m));
  const args: string[] = [];
  if (root !== undefined) {
    const parents: string[] = [];
    for (let parent = dirname(target); parent !== root && isWithin(parent, root); parent = dirname(parent)) {
      parents.unshift(parent);
    }
    for (const parent of parents) args.push("--perms", "0755", "--dir", parent);
  }
  return [...args, how, target, target];
}

function isWithin(path: string, folder: string): boolean {
  const rel = relative(folder, path);
  return rel !== "" && !rel.startsWith("..") && !rel.startsWith(sep);
}
