/**
 * vitest global setup: the kernel interpreter, set up once before any test (the first run
 * builds the cached environment, which takes minutes), then handed to the test workers through
 * DSASSIST_PYTHON: the forked workers start after this and inherit the environment.
 */
import { kernelPython } from "../sandboxes/src/pyenv.ts";

export default async function setup(): Promise<void> {
  const env = await kernelPython({ onProgress: (line) => console.log(line) });
  process.env.DSASSIST_PYTHON = env.python;
}
