#!/usr/bin/env node
/**
 * `npm test`: the kernel environment first (set up on the first run, then cached), then vitest
 * (extra arguments go to it), then the kernel runtime's own pytest suite with the kernel's
 * interpreter. Exits non-zero when either suite fails; both always run.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { register } from "tsx/esm/api";

register();
const { kernelPython, KernelEnvError } = await import("../sandboxes/src/pyenv.ts");

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const runtime = path.join(root, "sandboxes", "python");

const env = await kernelPython({ onProgress: (line) => console.log(line) }).catch((error) => {
  if (!(error instanceof KernelEnvError)) throw error;
  console.error(`dsassist: ${error.message}`);
  if (error.detail) console.error(error.detail);
  process.exit(2);
});
// vitest's global setup finds it here and does not probe again for a different interpreter
process.env.DSASSIST_PYTHON = env.python;

const run = (command, args) => spawnSync(command, args, { cwd: root, stdio: "inherit" }).status ?? 1;

if (run(env.python, ["-c", "import pytest, nbclient, nbformat"]) !== 0) {
  const requirements = path.join(runtime, "requirements-dev.txt");
  console.log(`installing the runtime's test tools into ${env.prefix}`);
  if (
    run(env.python, ["-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", requirements]) !== 0
  ) {
    console.error(`dsassist: installing ${requirements} failed`);
    process.exit(2);
  }
}

const vitest = run("npx", ["vitest", "run", ...process.argv.slice(2)]);
const pytest = run(env.python, ["-m", "pytest", "-q", "-p", "no:cacheprovider", runtime]);
process.exit(vitest !== 0 ? vitest : pytest);
