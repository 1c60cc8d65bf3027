import { execFileSync, spawn } from "node:child_process";
import * as fs from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  cachedEnvFolder,
  KernelEnvError,
  kernelPython,
  REQUIREMENTS,
  RUNTIME,
} from "../../sandboxes/src/pyenv.ts";
import { SandboxError } from "../../sandboxes/src/types.ts";

// global setup prepared it; the tests of the cached environment below switch it off
const READY = process.env.DSASSIST_PYTHON ?? "";
let scratch = "";

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), "dsassist-pyenv-"));
});
afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
});

/** Run `work` with DSASSIST_PYTHON unset, as on a machine where nobody set it. */
async function withoutEnv<T>(work: () => Promise<T>): Promise<T> {
  delete process.env.DSASSIST_PYTHON;
  try {
    return await work();
  } finally {
    process.env.DSASSIST_PYTHON = READY;
  }
}

async function failure(promise: Promise<unknown>): Promise<KernelEnvError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(KernelEnvError);
  expect(error).toBeInstanceOf(SandboxError);
  const message = (error as KernelEnvError).message;
  expect(message).not.toContain("\n");
  return error as KernelEnvError;
}

async function script(name: string, body: string): Promise<string> {
  const file = path.join(scratch, name);
  await fs.writeFile(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

describe("an interpreter given by the user", () => {
  it("the test workers run with the interpreter global setup prepared", async () => {
    expect(READY).not.toBe("");
    const env = await kernelPython();
    expect(env.python).toBe(READY);
    expect(env.runtime).toBe(RUNTIME);
    expect(await fs.stat(path.join(env.runtime, "dsassist_kernel", "toolkit.py"))).toBeTruthy();
    expect(path.isAbsolute(env.python)).toBe(true);
    // the sandbox must expose both the venv and the installation its python links to
    const real = await fs.realpath(env.python);
    expect(env.prefixes.some((p) => real.startsWith(`${p}/`))).toBe(true);
    expect(env.prefixes).toContain(env.prefix);
  });

  it("the --python option comes before DSASSIST_PYTHON", async () => {
    process.env.DSASSIST_PYTHON = "/nonexistent/python";
    try {
      expect((await kernelPython({ python: READY })).python).toBe(READY);
      const error = await failure(kernelPython());
      expect(error.message).toContain("/nonexistent/python (DSASSIST_PYTHON) does not exist");
    } finally {
      process.env.DSASSIST_PYTHON = READY;
    }
  });

  it("refuses a missing interpreter with the fix", async () => {
    const error = await failure(kernelPython({ python: path.join(scratch, "no-python") }));
    expect(error.message).toMatch(/no-python \(--python\) does not exist: point --python at an interpreter/);
  });

  it("refuses one that is not Python", async () => {
    const fake = await script("not-python", "echo hello; exit 3");
    const error = await failure(kernelPython({ python: fake }));
    expect(error.message).toContain("is not a working Python");
  });

  it("refuses one that lacks the kernel's packages, naming them", async () => {
    // a Python that finds no site-packages: the interpreter alone, without ipykernel and friends
    const bare = await script("bare-python", `exec "${READY}" -I -S "$@"`);
    const error = await failure(kernelPython({ python: bare }));
    expect(error.message).toContain("lacks ipykernel, numpy, pandas, scikit-learn");
    expect(error.message).toContain(`-m pip install -r ${REQUIREMENTS}`);
  });
});

describe("the cached environment", () => {
  let requirements = "";
  let cacheDir = "";

  beforeAll(async () => {
    requirements = path.join(scratch, "requirements.txt");
    await fs.writeFile(requirements, "# nothing to install: the test is about the venv, not pip\n");
    cacheDir = path.join(scratch, "cache");
  });

  const options = (progress: string[] = []) => ({
    requirements,
    cacheDir,
    onProgress: (line: string) => progress.push(line),
  });

  it("is created once, then reused", async () => {
    const progress: string[] = [];
    const env = await withoutEnv(() => kernelPython(options(progress)));
    const folder = await cachedEnvFolder(options());
    expect(folder.startsWith(path.join(cacheDir, "dsassist", "kernel-"))).toBe(true);
    expect(env.python).toBe(path.join(folder, "bin", "python"));
    expect(env.prefix).toBe(folder);
    expect(progress).toEqual([`setting up the kernel environment (first run, about 2 minutes): ${folder}`]);
    // the .pth puts the runtime on the path of any kernel of this interpreter
    const where = execFileSync(env.python, ["-c", "import dsassist_kernel; print(dsassist_kernel.__file__)"]);
    expect(where.toString().trim()).toBe(path.join(RUNTIME, "dsassist_kernel", "__init__.py"));

    const again: string[] = [];
    expect(await withoutEnv(() => kernelPython(options(again)))).toEqual(env);
    expect(again).toEqual([]);
  });

  it("waits while another process holds the lock, then uses what it made", async () => {
    const folder = await cachedEnvFolder(options());
    const marker = path.join(folder, ".dsassist-complete");
    await fs.rm(marker); // it must be set up again, and "the other process" is doing it
    const other = spawn("sleep", ["30"]);
    try {
      await fs.writeFile(`${folder}.lock`, String(other.pid));
      const progress: string[] = [];
      let done = false;
      const waiting = withoutEnv(() => kernelPython(options(progress))).finally(() => {
        done = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 600));
      expect(done).toBe(false);
      await fs.writeFile(marker, "");
      await fs.rm(`${folder}.lock`);
      expect((await waiting).prefix).toBe(folder);
      expect(progress).toEqual([]); // it did not install a second time
    } finally {
      other.kill();
    }
  });

  it("redoes an install that was killed half way: no marker, its owner's lock left behind", async () => {
    const folder = await cachedEnvFolder(options());
    await fs.rm(path.join(folder, ".dsassist-complete"));
    await fs.writeFile(path.join(folder, "left-over"), "");
    const dead = spawn("true");
    await new Promise((resolve) => dead.on("exit", resolve));
    await fs.writeFile(`${folder}.lock`, String(dead.pid));
    const progress: string[] = [];
    expect((await withoutEnv(() => kernelPython(options(progress)))).prefix).toBe(folder);
    expect(progress).toHaveLength(1);
    await expect(fs.stat(path.join(folder, "left-over"))).rejects.toThrow(); // made afresh
    await expect(fs.stat(`${folder}.lock`)).rejects.toThrow();
    await fs.stat(path.join(folder, ".dsassist-complete"));
  });

  it("says when pip fails, with pip's output as the detail", async () => {
    const bad = path.join(scratch, "bad-requirements.txt");
    await fs.writeFile(bad, "this is not a requirement!!\n");
    const error = await failure(withoutEnv(() => kernelPython({ requirements: bad, cacheDir })));
    expect(error.message).toMatch(
      /^installing the kernel packages failed \(ERROR: .*\): run again once fixed/,
    );
    expect(error.detail).toContain("this is not a requirement!!");
  });

  it("says when there is no python3 to make it with", async () => {
    const error = await failure(
      withoutEnv(() => kernelPython({ requirements, cacheDir, basePython: path.join(scratch, "python3") })),
    );
    expect(error.message).toContain(
      "install Python 3.10+ (apt-get install python3 python3-venv) or point --python at one",
    );
  });

  it("says when the venv module is missing", async () => {
    // Debian's python3 without python3-venv answers like this
    const python = await script(
      "python3-no-venv",
      `if [ "$2" = venv ]; then echo "ensurepip is not available" >&2; exit 1; fi\nexec "${READY}" "$@"`,
    );
    const elsewhere = path.join(scratch, "cache-no-venv");
    const error = await failure(
      withoutEnv(() => kernelPython({ requirements, cacheDir: elsewhere, basePython: python })),
    );
    expect(error.message).toMatch(/^the Python venv module is missing: apt-get install python3-venv/);
  });
});
