/**
 * Where bubblewrap is missing: "strict" refuses with the fix, "auto" warns once and runs.
 * The missing bwrap is real: this file's worker runs with a PATH that has setpriv and prlimit
 * but no bwrap (vitest runs each file in its own process, so the probe's cache is this file's).
 */
import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { bubblewrapWorks } from "../../sandboxes/src/local/isolation.ts";
import { LocalSandbox } from "../../sandboxes/src/local/sandbox.ts";
import { SandboxError } from "../../sandboxes/src/types.ts";

const base = mkdtempSync(join(tmpdir(), "dsassist-nobwrap-"));
const path = process.env.PATH;
beforeAll(() => {
  const bin = join(base, "bin");
  mkdirSync(bin);
  for (const tool of ["setpriv", "prlimit"]) symlinkSync(`/usr/bin/${tool}`, join(bin, tool));
  process.env.PATH = bin;
});
afterAll(() => {
  process.env.PATH = path;
  rmSync(base, { recursive: true, force: true });
});

it("refuses isolation strict without bubblewrap, naming the fix", () => {
  expect(bubblewrapWorks()).toBe(false);
  expect(() => new LocalSandbox({ workdir: join(base, "strict"), isolation: "strict" })).toThrow(
    new SandboxError(
      "isolation 'strict' needs bubblewrap, which is not available here (apt-get install bubblewrap)",
    ),
  );
});

it("warns once with isolation auto, and runs the kernel all the same", async () => {
  const warnings: string[] = [];
  const listen = (warning: Error) => warnings.push(warning.message);
  process.on("warning", listen);
  const sb = new LocalSandbox({ workdir: join(base, "auto", "work"), isolation: "auto", pool: 0 });
  new LocalSandbox({ workdir: join(base, "auto2", "work"), isolation: "auto", pool: 0 });
  await sb.start();
  try {
    const r = await sb.execute("print(6 * 7)");
    expect(r.stdout).toBe("42\n");
  } finally {
    await sb.close();
    process.off("warning", listen);
  }
  expect(warnings).toEqual([
    "bubblewrap is not available: kernels run without filesystem and network isolation",
  ]);
});
