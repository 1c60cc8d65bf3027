/**
 * The local sandbox's confinement, limits and checkpoints, on real confined kernels, and the
 * hostile cells that concern the sandbox alone (tests/sandbox/test_isolation.py and the
 * sandbox part of test_hostile.py). Most need bubblewrap; those without it say so.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readdirSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FIRST_KERNEL_UID } from "../../sandboxes/src/local/isolation.ts";
import { LocalSandbox } from "../../sandboxes/src/local/sandbox.ts";
import { SandboxError } from "../../sandboxes/src/types.ts";
import { baseFolder, HAVE_BWRAP, outsideFolder, ROOT, value } from "./helpers.ts";

const base = baseFolder();
afterAll(() => rmSync(base, { recursive: true, force: true }));
const SECRETS = {
  OPENAI_API_KEY: `sk-${randomUUID()}`,
  AWS_SECRET_ACCESS_KEY: randomUUID(),
  DSASSIST_TEST_TOKEN: randomUUID(),
};
let folders = 0;
/** A fresh sandbox in its own run folder under the visible base. */
function sandbox(options: Partial<ConstructorParameters<typeof LocalSandbox>[0]> = {}): LocalSandbox {
  return new LocalSandbox({ workdir: join(base, `run-${folders++}`, "work"), ...options });
}
async function using<T>(sb: LocalSandbox, body: (sb: LocalSandbox) => Promise<T>): Promise<T> {
  await sb.start();
  try {
    return await body(sb);
  } finally {
    await sb.close();
  }
}

describe.skipIf(!HAVE_BWRAP)("one confined kernel", () => {
  const sb = sandbox({ pool: 0, limits: { memoryMb: 2048, fileMb: 1 } });
  beforeAll(async () => {
    Object.assign(process.env, SECRETS); // the kernel's environment is taken at launch
    try {
      await sb.start();
    } finally {
      for (const name of Object.keys(SECRETS)) delete process.env[name];
    }
  });
  afterAll(() => sb.close());

  it.skipIf(!ROOT)("runs as an unprivileged user of its own", async () => {
    const ids = await value(sb, "[os.getuid(), os.geteuid(), os.getgid(), os.getegid(), os.getgroups()]");
    const uid = sb.confinement.uid;
    expect(uid).toBeGreaterThanOrEqual(FIRST_KERNEL_UID);
    expect(ids).toEqual([uid, uid, uid, uid, []]);
  });

  it("carries none of the controller's secrets in its environment", async () => {
    const env = (await value(sb, "dict(os.environ)")) as Record<string, string>;
    expect(Object.keys(env).filter((k) => k in SECRETS)).toEqual([]);
    expect(Object.values(env).filter((v) => Object.values(SECRETS).includes(v))).toEqual([]);
    expect(env.HOME).toBe(sb.workdir);
    expect(env.PYTHONHASHSEED).toBe("0");
  });

  it("has no network: a service on the host's loopback is out of reach", async () => {
    let connected = false;
    const server: Server = createServer(() => {
      connected = true;
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    try {
      const r = await sb.execute(
        `import socket\nsocket.create_connection(('127.0.0.1', ${port}), timeout=3)`,
      );
      expect(["ConnectionRefusedError", "OSError"]).toContain(r.error?.name);
      expect(connected).toBe(false);
    } finally {
      server.close();
    }
    expect(await value(sb, "[name for _, name in __import__('socket').if_nameindex()]")).toEqual(["lo"]);
  });

  it("hides the home folder", async () => {
    const probe = join(homedir(), `.dsassist-probe-${randomUUID()}`);
    writeFileSync(probe, "secret", { mode: 0o644 });
    try {
      const r = await sb.execute(`print(open(${JSON.stringify(probe)}).read())`);
      expect(r.error?.name).toBe("FileNotFoundError"); // not even there
      expect(await value(sb, `os.listdir(${JSON.stringify(homedir())})`)).not.toContain(
        probe.split("/").at(-1),
      );
    } finally {
      unlinkSync(probe);
    }
  });

  it("cannot write outside its work folder (a read-only mount), only inside", async () => {
    const outside = outsideFolder(base);
    const targets = [join(outside, "planted.txt"), join(sb.workdir, "..", "planted.txt"), "/usr/planted"];
    for (const target of targets) {
      const r = await sb.execute(`open(${JSON.stringify(target)}, 'w').write('x')`);
      expect(r.error?.value, target).toContain("[Errno 30]"); // EROFS
      expect(existsSync(target)).toBe(false);
    }
    expect(readdirSync(outside)).toEqual([]);
    expect((await sb.execute("open('made-inside.txt', 'w').write('ok')")).ok).toBe(true);
    expect(statSync(join(sb.workdir, "made-inside.txt")).size).toBe(2);
  });

  it("has a private /tmp and /dev/shm it may write", async () => {
    const host = join(tmpdir(), `dsassist-${randomUUID()}`);
    writeFileSync(host, "host");
    try {
      expect(await value(sb, `os.path.exists(${JSON.stringify(host)})`)).toBe(false);
      const name = `dsassist-${randomUUID()}`;
      const r = await sb.execute(
        `open('/tmp/${name}', 'w').write('k')\nopen('/dev/shm/${name}', 'w').write('k')`,
      );
      expect(r.ok).toBe(true);
      expect(existsSync(join("/tmp", name)) || existsSync(join("/dev/shm", name))).toBe(false);
    } finally {
      unlinkSync(host);
    }
  });

  it("runs joblib's worker processes in parallel (POSIX semaphores in its private /dev/shm)", async () => {
    const code = [
      "import os, time, warnings",
      "from joblib import Parallel, delayed",
      "def pid():",
      "    time.sleep(0.2)",
      "    return os.getpid()",
      "with warnings.catch_warnings():",
      "    warnings.simplefilter('error')",
      "    pids = set(Parallel(n_jobs=2, batch_size=1)(delayed(pid)() for _ in range(6)))",
      "print(len(pids))",
    ].join("\n");
    const r = await sb.execute(code, { timeoutS: 60 });
    expect(r.error).toBeUndefined();
    expect(r.stdout).toBe("2\n");
  });

  it("interrupts a cell at its timeout and keeps the kernel", async () => {
    expect((await sb.execute("kept = 'still here'")).ok).toBe(true);
    const start = performance.now();
    const r = await sb.execute("import time\ntime.sleep(30)", { timeoutS: 1 });
    expect(performance.now() - start).toBeLessThan(5000);
    expect(r.error?.name).toBe("Timeout");
    expect(r.error?.value).not.toContain("fresh kernel");
    expect(await value(sb, "kept")).toBe("still here");
  });

  it("names the memory limit, and the kernel goes on", async () => {
    expect((await sb.execute("small = list(range(10))")).ok).toBe(true);
    const r = await sb.execute("big = bytearray(3 * 1024**3)");
    expect(r.error?.name).toBe("MemoryLimit");
    expect(r.error?.value.startsWith("MemoryError")).toBe(true);
    expect(await value(sb, "[len(small), 'big' in dir()]")).toEqual([10, false]);
  });

  it("names the file size limit", async () => {
    const r = await sb.execute("open('big.bin', 'wb').write(b'0' * 5 * 2**20)");
    expect(r.error?.name).toBe("FileSizeLimit");
    expect(statSync(join(sb.workdir, "big.bin")).size).toBe(2 ** 20);
    unlinkSync(join(sb.workdir, "big.bin"));
  });
});

describe("isolation modes", () => {
  it("runs unconfined with isolation none, as the controller, with the environment filtered", async () => {
    process.env.DSASSIST_TEST_TOKEN = SECRETS.DSASSIST_TEST_TOKEN;
    const sb = sandbox({ isolation: "none", pool: 0 });
    delete process.env.DSASSIST_TEST_TOKEN;
    const [uid, env] = (await using(sb, (s) => value(s, "[os.getuid(), sorted(os.environ)]"))) as [
      number,
      string[],
    ];
    expect(uid).toBe(process.getuid?.());
    expect(env).not.toContain("DSASSIST_TEST_TOKEN");
    expect(sb.confinement.bwrap).toBe(false);
  });

  it("rejects an unknown isolation with a one-line message", () => {
    expect(() => sandbox({ isolation: "tight" as "strict" })).toThrow(
      new SandboxError('isolation must be auto, strict or none, not "tight"'),
    );
  });

  it("drops an image whose artifacts folder was replaced by a link, writing nothing through it", async () => {
    const sb = sandbox({ isolation: "none", pool: 0 });
    const outside = outsideFolder(base);
    symlinkSync(outside, join(sb.workdir, "..", "artifacts"));
    const code =
      "from IPython.display import Image, display\n" +
      "display(Image(data=b'\\x89PNG\\r\\n\\x1a\\n not really', format='png'))";
    const r = await using(sb, (s) => s.execute(code));
    expect(readdirSync(outside)).toEqual([]);
    expect(r.outputs).toEqual([{ mime: "text/plain", text: expect.stringContaining("image dropped") }]);
  });
});

describe.skipIf(!HAVE_BWRAP)("limits and hostile cells", () => {
  it("kills a cell that ignores interrupts and restores the checkpoint", async () => {
    await using(sandbox({ interruptGraceS: 1 }), async (sb) => {
      expect((await sb.execute("kept = 'from the checkpoint'")).ok).toBe(true);
      await sb.checkpoint("before");
      expect((await sb.execute("kept = 'lost'")).ok).toBe(true);
      const start = performance.now();
      const deaf = "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass";
      const r = await sb.execute(deaf, { timeoutS: 1 });
      expect(performance.now() - start).toBeLessThan(10_000);
      expect(r.error?.name).toBe("Timeout");
      expect(r.error?.value.endsWith("restored from checkpoint before")).toBe(true);
      expect(await value(sb, "kept")).toBe("from the checkpoint");
    });
  });

  it("names the CPU limit when it ends the kernel, and the next cell runs on a new one", async () => {
    await using(sandbox({ limits: { cpuS: 2 } }), async (sb) => {
      expect((await sb.execute("before = 1")).ok).toBe(true);
      const start = performance.now();
      const r = await sb.execute("while True:\n    pass", { timeoutS: 30 });
      expect(performance.now() - start).toBeLessThan(15_000);
      expect(r.error?.name).toBe("CPULimit");
      expect(r.error?.value).toContain("a fresh kernel replaced it");
      expect((await sb.execute("print('before' in dir())")).stdout).toBe("False\n");
    });
  });

  it("stops a fork bomb at the process limit, ends its children and restores the checkpoint", async () => {
    const bomb = [
      "import os, time",
      "parent = os.getpid()",
      "while True:",
      "    try:",
      "        os.fork()",
      "    except BlockingIOError:",
      "        if os.getpid() == parent:",
      "            raise",
      "        time.sleep(3600)",
    ].join("\n");
    await using(sandbox({ limits: { processes: 96 } }), async (sb) => {
      await sb.settle(); // a spare that boots while the bomb holds the process table dies
      expect((await sb.execute("kept = 'from the checkpoint'")).ok).toBe(true);
      await sb.checkpoint("before");
      const start = performance.now();
      const r = await sb.execute(bomb, { timeoutS: 30 });
      expect(performance.now() - start).toBeLessThan(15_000);
      expect(r.error?.name).toBe("ProcessLimit");
      expect(r.error?.value.endsWith("restored from checkpoint before")).toBe(true);
      expect(await value(sb, "kept")).toBe("from the checkpoint");
      // the bomb's children went with the old kernel's pid namespace
      expect(await value(sb, "sum(p.isdigit() for p in os.listdir('/proc'))")).toBeLessThan(10);
    });
  });

  it("keeps one sandbox at its process limit from starving another", async () => {
    const fill = [
      "import threading, time",
      "hold = threading.Event()",
      "def fill():",
      "    while not hold.is_set():",
      "        try:",
      "            threading.Thread(target=hold.wait, daemon=True).start()",
      "        except RuntimeError:",
      "            time.sleep(0.005)",
      "threading.Thread(target=fill, daemon=True).start()",
      "time.sleep(1)",
    ].join("\n");
    await using(sandbox({ pool: 0, limits: { processes: 48 } }), async (a) => {
      expect((await a.execute(fill)).ok).toBe(true);
      const other = "import threading\nt = threading.Thread(target=print)\nt.start()\nt.join()";
      const r = await using(sandbox({ pool: 0, limits: { processes: 48 } }), (b) => b.execute(other));
      expect(r.error).toBeUndefined();
      await a.execute("hold.set()");
    });
  });

  it("reports a segfault as a dead kernel, then works on a fresh one", async () => {
    await using(sandbox(), async (sb) => {
      const r = await sb.execute("import ctypes\nctypes.string_at(0)");
      expect(r.error?.name).toBe("KernelDied");
      expect(r.error?.value).toContain("a segmentation fault");
      expect((await sb.execute("print('next')")).stdout).toBe("next\n");
    });
  });

  it("replaces a dead spare from the pool", async () => {
    await using(sandbox(), async (sb) => {
      await sb.settle();
      const pool = (sb as unknown as { pool: { spares: { kill(): void; exited: Promise<unknown> }[] } }).pool;
      for (const spare of pool.spares) {
        spare.kill();
        await spare.exited;
      }
      const r = await sb.execute("import os\nos._exit(1)");
      expect(r.error?.name).toBe("KernelDied");
      expect((await sb.execute("print('next')")).stdout).toBe("next\n");
    });
  });

  it("writes its log through no link the kernel planted", async () => {
    const outside = outsideFolder(base);
    await using(sandbox({ pool: 0 }), async (sb) => {
      const target = JSON.stringify(join(outside, "controller.log"));
      expect(
        (await sb.execute(`import os\nos.remove('kernel.log')\nos.symlink(${target}, 'kernel.log')`)).ok,
      ).toBe(true);
      await sb.restart(); // the controller opens the log for the new kernel
      expect((await sb.execute("import os\nos.write(2, b'to the log')")).ok).toBe(true);
    });
    expect(readdirSync(outside)).toEqual([]);
  });

  it("cannot replace the artifacts folder, which lies outside its work folder", async () => {
    const outside = outsideFolder(base);
    await using(sandbox({ pool: 0 }), async (sb) => {
      const r = await sb.execute(
        `import os\nos.symlink(${JSON.stringify(outside)}, os.path.join('..', 'artifacts'))`,
      );
      expect(r.error?.value).toContain("[Errno 30]");
      const image = await sb.execute(
        "from IPython.display import Image, display\ndisplay(Image(data=b'\\x89PNG\\r\\n\\x1a\\n x', format='png'))",
      );
      expect(image.outputs[0]?.path).toMatch(/^artifacts\/[0-9a-f]{16}\.png$/);
    });
    expect(readdirSync(outside)).toEqual([]);
  });
});

const TAMPER = [
  "import glob, os",
  "for path in glob.glob('.checkpoints/objects/*'):",
  "    open(path, 'wb').write(b'tampered')",
  "os._exit(1)",
].join("\n");

describe.skipIf(!HAVE_BWRAP)("checkpoints", () => {
  it("brings a killed kernel back with the checkpoint, modules included", async () => {
    await using(sandbox(), async (sb) => {
      expect((await sb.execute("import numpy as np\nx = 1\narr = np.arange(5)")).ok).toBe(true);
      const checkpoint = await sb.checkpoint("a");
      expect(checkpoint.modules).toEqual({ np: "numpy" });
      expect(Object.keys(checkpoint.objects).sort()).toEqual(["arr", "x"]);
      expect(existsSync(join(sb.checkpoints, "objects", checkpoint.objects.x as string))).toBe(true);
      expect((await sb.checkpoint("again")).newBytes).toBe(0); // content-addressed: stored once
      await sb.checkpoint("a");
      expect((await sb.execute("x = 2\ny = 'after the checkpoint'")).ok).toBe(true);
      const r = await sb.execute("import os\nos.kill(os.getpid(), 9)");
      expect(r.error?.name).toBe("KernelDied");
      expect(r.error?.value).toContain("SIGKILL (out of memory?)");
      expect(r.error?.value.endsWith("restored from checkpoint a")).toBe(true);
      expect(await value(sb, "[x, arr.tolist(), 'y' in dir(), np.__name__]")).toEqual([
        1,
        [0, 1, 2, 3, 4],
        false,
        "numpy",
      ]);
    });
  });

  it("rebuilds an unpicklable object by replay", async () => {
    const cells = ["def numbers():\n    yield from range(100)", "gen = numbers()\nfirst = next(gen)"];
    await using(sandbox(), async (sb) => {
      for (const cell of cells) expect((await sb.execute(cell)).ok).toBe(true);
      const checkpoint = await sb.checkpoint("gen", cells);
      expect(checkpoint.unpicklable).toEqual(["gen"]);
      expect(Object.keys(checkpoint.objects)).toEqual(expect.arrayContaining(["first", "numbers"]));
      const r = await sb.execute("import os\nos._exit(1)");
      expect(r.error?.value.endsWith("restored from checkpoint gen")).toBe(true);
      expect(await value(sb, "[first, next(gen)]")).toEqual([0, 1]);
    });
  });

  it("branches back to an older state", async () => {
    await using(sandbox(), async (sb) => {
      expect((await sb.execute("x = 'old'")).ok).toBe(true);
      const old = await sb.checkpoint("old");
      expect((await sb.execute("x = 'new'\ny = 1")).ok).toBe(true);
      await sb.checkpoint("new");
      await sb.branch(old);
      expect(await value(sb, "[x, 'y' in dir()]")).toEqual(["old", false]);
      expect(sb.lastCheckpoint).toEqual(old);
    });
  });

  it("throws on a corrupt object when there is nothing to replay", async () => {
    await using(sandbox({ pool: 0 }), async (sb) => {
      expect((await sb.execute("x = list(range(10))")).ok).toBe(true);
      const checkpoint = await sb.checkpoint("a");
      writeFileSync(join(sb.checkpoints, "objects", checkpoint.objects.x as string), "not a pickle");
      const failed = await sb.restore(checkpoint).catch((error: unknown) => error);
      expect(failed).toBeInstanceOf(SandboxError);
      expect((failed as Error).message).toBe(
        "_dsassist_restore failed in the kernel: ValueError: checkpoint object for 'x' is corrupt",
      );
    });
  });

  it("rebuilds checkpoints the kernel corrupted by replaying their cells", async () => {
    await using(sandbox(), async (sb) => {
      const cells = ["x = 41", "x += 1"];
      for (const cell of cells) expect((await sb.execute(cell)).ok).toBe(true);
      await sb.checkpoint("a", cells);
      const r = await sb.execute(TAMPER);
      expect(r.error?.name).toBe("KernelDied");
      expect(r.error?.value.endsWith("restored from checkpoint a")).toBe(true);
      expect(await value(sb, "x")).toBe(42);
    });
  });

  it("does not throw from execute when corrupted checkpoints cannot be rebuilt", async () => {
    await using(sandbox(), async (sb) => {
      expect((await sb.execute("x = 1")).ok).toBe(true);
      await sb.checkpoint("a"); // no cells to replay
      const r = await sb.execute(TAMPER);
      expect(r.error?.name).toBe("KernelDied");
      expect(r.error?.value).toContain(
        "restoring a failed: _dsassist_restore failed in the kernel: ValueError",
      );
      expect(await value(sb, "'x' in dir()")).toBe(false); // a fresh kernel, and it works
    });
  });
});
