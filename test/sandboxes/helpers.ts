/** What the sandbox tests share: the kernel interpreter, a visible base folder, a value probe. */
import { chmodSync, mkdirSync, mkdtempSync } from "node:fs";
import { join } from "node:path";
import { bubblewrapWorks } from "../../sandboxes/src/local/isolation.ts";
import type { LocalSandbox } from "../../sandboxes/src/local/sandbox.ts";

export const HAVE_BWRAP = bubblewrapWorks();
export const NO_BWRAP = "bubblewrap (bwrap) is missing or cannot create namespaces here";
export const ROOT = process.geteuid?.() === 0;

/**
 * A fresh folder outside the private /tmp (so the kernel sees what is next to its work folder),
 * traversable by the unprivileged kernel user.
 */
export function baseFolder(): string {
  const folder = mkdtempSync("/var/tmp/dsassist-sandbox-test-");
  chmodSync(folder, 0o755);
  return folder;
}

/** A world-writable folder next to the work folder: only the sandbox keeps the kernel out. */
export function outsideFolder(base: string): string {
  const folder = join(base, `outside-${Math.random().toString(16).slice(2, 10)}`);
  mkdirSync(folder);
  chmodSync(folder, 0o777);
  return folder;
}

/** The value of a JSON-able Python expression evaluated in the kernel. */
export async function value(sandbox: LocalSandbox, expression: string): Promise<unknown> {
  const r = await sandbox.execute(`import json, os\nprint(json.dumps(${expression}))`, { timeoutS: 30 });
  if (!r.ok) throw new Error(`${expression}: ${r.error?.name}: ${r.error?.value}`);
  return JSON.parse(r.stdout);
}
