/** The one way the core makes a sandbox: started, ready for its first cell. */
import { LocalSandbox, type LocalSandboxOptions } from "./local/sandbox.ts";

export type SandboxOptions = LocalSandboxOptions;

export async function createSandbox(options: SandboxOptions): Promise<LocalSandbox> {
  const sandbox = new LocalSandbox(options);
  await sandbox.start();
  return sandbox;
}
