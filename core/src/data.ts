/**
 * The user's table, checked before a run writes anything. The kernel interpreter reads it
 * (pandas: CSV, TSV, Parquet), in a process of its own; the answer is one JSON line.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { z } from "zod";
import { UserError } from "./errors.ts";
import { Task } from "./messages.ts";

const run = promisify(execFile);

export const TableInfo = z.object({
  rows: z.number().int(),
  columns: z.array(z.string()),
  sha256: z.string(),
  format: z.enum(["csv", "tsv", "parquet"]),
  task: Task.nullable(),
});
export type TableInfo = z.infer<typeof TableInfo>;

const Reply = z.discriminatedUnion("ok", [
  TableInfo.extend({ ok: z.literal(true) }),
  z.object({ ok: z.literal(false), error: z.string() }),
]);

export interface KernelEnv {
  python: string;
  runtime: string;
}

/** Shape, columns, hash and (with a target) the task, or a one-line UserError. */
export async function inspectTable(env: KernelEnv, path: string, target: string | null): Promise<TableInfo> {
  const args = ["-m", "dsassist_kernel.table", path, ...(target === null ? [] : [target])];
  let stdout: string;
  try {
    ({ stdout } = await run(env.python, args, {
      env: { ...process.env, PYTHONPATH: env.runtime },
      maxBuffer: 64 * 1024 * 1024,
    }));
  } catch (error) {
    const detail = String((error as { stderr?: string }).stderr ?? error)
      .trim()
      .split("\n")
      .at(-1);
    throw new UserError(`could not read ${path} with ${env.python}: ${detail}`);
  }
  const reply = Reply.parse(JSON.parse(stdout));
  if (!reply.ok) throw new UserError(reply.error);
  const { ok: _, ...info } = reply;
  return info;
}
