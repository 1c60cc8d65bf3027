/**
 * What the core needs of a kernel, wherever it runs: one `Sandbox` interface that the
 * local (bubblewrap) backend implements today and the Docker backend will implement.
 *
 * Everything a kernel sends back is untrusted: these schemas are what the core reads.
 */
import { z } from "zod";

/** An error raised by a cell, or a limit it hit (`Timeout`, `MemoryLimit`, `KernelDied`, ...). */
export const ErrorInfo = z.object({
  name: z.string(),
  value: z.string(),
  traceback: z.array(z.string()).default([]),
});
export type ErrorInfo = z.infer<typeof ErrorInfo>;

/** One rich output of a cell: text, an image saved to a file, or a structured record. */
export const Output = z.object({
  mime: z.string(),
  text: z.string().optional(),
  /** relative to the sandbox's work folder's parent (the run folder), for binary outputs */
  path: z.string().optional(),
  /** structured records (`application/vnd.dsassist.<kind>+json`) */
  data: z.record(z.string(), z.unknown()).optional(),
});
export type Output = z.infer<typeof Output>;

export const Execution = z.object({
  ok: z.boolean(),
  stdout: z.string().default(""),
  stderr: z.string().default(""),
  error: ErrorInfo.optional(),
  outputs: z.array(Output).default([]),
  durationS: z.number().default(0),
});
export type Execution = z.infer<typeof Execution>;

export const RECORD_MIME = (kind: string) => `application/vnd.dsassist.${kind}+json`;

/** Structured records of one kind (`metrics`, `profile`, ...) that a cell published. */
export function records(execution: Execution, kind: string): Record<string, unknown>[] {
  const mime = RECORD_MIME(kind);
  return execution.outputs.flatMap((o) => (o.mime === mime && o.data ? [o.data] : []));
}

export const Variable = z.object({
  name: z.string(),
  type: z.string(),
  shape: z.string().optional(),
  /** dtypes of a frame, keys of a dict, repr of a scalar */
  detail: z.string().optional(),
  /** a frame's column names (the first hundred) */
  columns: z.array(z.string()).optional(),
});
export type Variable = z.infer<typeof Variable>;

/** A compact picture of what the live kernel holds, for the coder. */
export const KernelState = z.object({
  variables: z.array(Variable).default([]),
  modules: z.array(z.string()).default([]),
});
export type KernelState = z.infer<typeof KernelState>;

/** A saved namespace: content-addressed objects plus the cells that rebuild the rest. */
export const Checkpoint = z.object({
  label: z.string(),
  /** variable -> sha256 of its pickle, under `<checkpoints>/objects/` */
  objects: z.record(z.string(), z.string()).default({}),
  /** alias -> module name, re-imported on restore */
  modules: z.record(z.string(), z.string()).default({}),
  unpicklable: z.array(z.string()).default([]),
  /** cells that rebuild the unpicklable names, or everything when the objects are gone */
  replay: z.array(z.string()).default([]),
  newBytes: z.number().default(0),
  durationS: z.number().default(0),
});
export type Checkpoint = z.infer<typeof Checkpoint>;

/** Per-kernel limits; null switches a limit off. */
export const Limits = z.object({
  /** address space */
  memoryMb: z.number().int().positive().nullable().default(4096),
  /** CPU seconds over the kernel's life */
  cpuS: z.number().int().positive().nullable().default(null),
  /** processes of the kernel's user */
  processes: z.number().int().positive().nullable().default(256),
  /** largest file the kernel may write */
  fileMb: z.number().int().positive().nullable().default(1024),
  /** per stream and cell; head and tail are kept */
  outputKb: z.number().int().positive().default(256),
  /** threads the kernel's libraries may use (its share of the cores) */
  cores: z.number().int().positive().nullable().default(null),
});
export type Limits = z.infer<typeof Limits>;

export type Isolation = "auto" | "strict" | "none";

export interface ExecuteOptions {
  /** wall seconds before the cell is interrupted, then the kernel killed */
  timeoutS?: number;
}

/**
 * One stateful kernel. `execute` never throws for what a cell does (an error, a timeout,
 * a dead kernel): those come back as a failed Execution with the cause named, and a dead
 * kernel is replaced and restored from the last checkpoint.
 */
export interface Sandbox {
  start(): Promise<void>;
  close(): Promise<void>;
  execute(code: string, options?: ExecuteOptions): Promise<Execution>;
  state(): Promise<KernelState>;
  /** save the namespace; it becomes the state a dead kernel is restored to */
  checkpoint(label: string, replay?: string[]): Promise<Checkpoint>;
  /** bring a checkpoint's namespace into the current kernel */
  restore(checkpoint: Checkpoint): Promise<void>;
  /** continue from an earlier state: a fresh pooled kernel restored to `checkpoint` */
  branch(checkpoint: Checkpoint): Promise<void>;
}

/** The sandbox was asked for something its environment cannot give (a user-facing message). */
export class SandboxError extends Error {
  override name = "SandboxError";
}
