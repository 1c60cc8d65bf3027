/**
 * Run settings: the CLI's flags and `dsassist.toml`, validated with zod into one typed
 * object that the API and the controller share.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parse as parseToml } from "smol-toml";
import { z } from "zod";
import { UserError } from "./errors.ts";

export const CONFIG_FILE = "dsassist.toml";

const UNIT_SECONDS: Record<string, number> = { h: 3600, m: 60, s: 1 };

/** Seconds in a duration such as `90`, `90s`, `5m`, `1h` or `1h30m`. */
export function parseDuration(text: string | number): number {
  if (typeof text === "number") return text;
  const value = text.trim().toLowerCase();
  if (/^\d+(\.\d+)?$/.test(value)) return Number(value);
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)\s*(h|m|s)/g)];
  const rest = value.replace(/(\d+(?:\.\d+)?)\s*(h|m|s)/g, "").trim();
  if (parts.length === 0 || rest) throw new UserError(`invalid duration "${text}": use e.g. 90s, 5m or 1h`);
  return parts.reduce((sum, [, n, unit]) => sum + Number(n) * (UNIT_SECONDS[unit!] ?? 0), 0);
}

const Duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    const seconds = parseDuration(v);
    if (seconds > 0) return seconds;
    ctx.addIssue({ code: "custom", message: "must be more than 0 seconds" });
  } catch (error) {
    ctx.addIssue({ code: "custom", message: (error as Error).message });
  }
  return z.NEVER;
});

/** `dsassist.toml`: what a team sets once. LLM sections are read by the LLM mode. */
export const FileConfig = z
  .object({
    budget: z
      .object({ wall: Duration.optional(), usd: z.number().positive().optional() })
      .strict()
      .optional(),
    kernel: z.object({ python: z.string().optional() }).strict().optional(),
    sandbox: z
      .object({
        backend: z.enum(["local"]).optional(),
        isolation: z.enum(["auto", "strict", "none"]).optional(),
        memory_mb: z.number().int().min(1024).optional(),
        cpu_s: z.number().int().positive().optional(),
        processes: z.number().int().min(8).optional(),
        file_mb: z.number().int().positive().optional(),
        output_kb: z.number().int().positive().optional(),
      })
      .strict()
      .optional(),
    llm: z.record(z.string(), z.unknown()).optional(),
    store: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type FileConfig = z.infer<typeof FileConfig>;

/** One line naming the first problem, as `key.path: message`. */
export function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0]!;
  const key = issue.path.join(".");
  return key ? `${key}: ${issue.message}` : issue.message;
}

/** The config file given, else ./dsassist.toml when present, else an empty config. */
export function loadFileConfig(path?: string): { file: string | null; config: FileConfig } {
  const file = path ? resolve(path) : existsSync(CONFIG_FILE) ? resolve(CONFIG_FILE) : null;
  if (file === null) return { file, config: {} };
  let raw: unknown;
  try {
    raw = parseToml(readFileSync(file, "utf8"));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw new UserError(`config file not found: ${file}`);
    const first = String((error as Error).message).split("\n")[0];
    throw new UserError(`${file} is not valid TOML: ${first}`);
  }
  const parsed = FileConfig.safeParse(raw);
  if (!parsed.success) throw new UserError(`${file}: ${firstIssue(parsed.error)}`);
  return { file, config: parsed.data };
}

/** Everything one run needs to know, from flags and the config file. */
export const RunConfig = z.object({
  data: z.string().min(1),
  target: z.string().min(1).nullable(),
  question: z.string().default(""),
  out: z.string().min(1),
  budgetS: Duration.default(300),
  maxSteps: z.number().int().min(1).default(40),
  seed: z.number().int().default(0),
  /** default follows the task: roc_auc, accuracy or rmse */
  metric: z.string().nullable().default(null),
  folds: z.number().int().min(2).max(20).default(5),
  groupColumn: z.string().nullable().default(null),
  timeColumn: z.string().nullable().default(null),
  keep: z.array(z.string()).default([]),
  cellTimeoutS: Duration.default(600),
  maxFixAttempts: z.number().int().min(0).default(2),
  templates: z.array(z.string()).default([]),
  overwrite: z.boolean().default(false),
  exploreShare: z.number().min(0).max(1).default(0.3),
  configFile: z.string().nullable().default(null),
  parallel: z.number().int().min(1).max(64).default(1),
  /** per kernel; null: this machine's cores / parallel */
  cores: z.number().int().min(1).nullable().default(null),
  sandbox: z.enum(["local"]).default("local"),
  python: z.string().nullable().default(null),
  isolation: z.enum(["auto", "strict", "none"]).default("auto"),
  /** address space: a kernel maps ~700 MB to start */
  memoryMb: z.number().int().min(1024).nullable().default(4096),
  cpuS: z.number().int().min(1).nullable().default(null),
  processes: z.number().int().min(8).nullable().default(256),
  fileMb: z.number().int().min(1).nullable().default(1024),
  outputKb: z.number().int().min(1).default(256),
});
export type RunConfig = z.infer<typeof RunConfig>;
export type RunConfigInput = z.input<typeof RunConfig>;

/** Flags over the config file over the defaults; a bad value is a one-line UserError. */
export function runConfig(flags: RunConfigInput, file: FileConfig, configFile: string | null): RunConfig {
  const sandbox = file.sandbox ?? {};
  const merged: Partial<RunConfigInput> = {
    budgetS: file.budget?.wall,
    python: file.kernel?.python,
    sandbox: sandbox.backend,
    isolation: sandbox.isolation,
    memoryMb: sandbox.memory_mb,
    cpuS: sandbox.cpu_s,
    processes: sandbox.processes,
    fileMb: sandbox.file_mb,
    outputKb: sandbox.output_kb,
    configFile,
    ...Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)),
  };
  const parsed = RunConfig.safeParse(merged);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UserError(`invalid ${flagName(String(issue.path[0] ?? ""))}: ${issue.message}`);
  }
  return parsed.data;
}

const FLAGS: Record<string, string> = {
  budgetS: "--budget",
  cellTimeoutS: "--cell-timeout",
  groupColumn: "--group",
  timeColumn: "--time",
};

/** The command-line flag of a RunConfig key: `maxSteps` -> `--max-steps`. */
function flagName(key: string): string {
  return FLAGS[key] ?? `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}
