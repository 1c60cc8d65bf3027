/**
 * Code run in the kernel interpreter, as the Python tests ran it with `exec`: the errors the
 * repair rules see are the ones Python really raises, and a repaired cell must really run.
 *
 * One interpreter serves a test file (imports stay loaded); each job gets a fresh namespace.
 */
import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { ErrorInfo } from "../../../core/src/messages.ts";

// the kernel interpreter, as test/global-setup.ts found it with kernelPython()
const PYTHON = process.env.DSASSIST_PYTHON!;

const DRIVER = `
import json, sys
for line in sys.stdin:
    job = json.loads(line)
    namespace = {}
    exec(job["setup"], namespace)
    try:
        exec(job["code"], namespace)
    except Exception as exc:
        reply = {"error": {"name": type(exc).__name__, "value": str(exc), "traceback": []}}
    else:
        reply = {"values": {k: eval(e, namespace) for k, e in job["show"].items()}}
    print(json.dumps(reply), flush=True)
`;

interface Ran {
  error?: ErrorInfo;
  values?: Record<string, unknown>;
}

export class Python {
  private readonly child: ChildProcessWithoutNullStreams = spawn(PYTHON, ["-c", DRIVER]);
  private readonly replies = createInterface({ input: this.child.stdout })[Symbol.asyncIterator]();
  private stderr = "";

  constructor() {
    this.child.stderr.on("data", (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
  }

  /** Runs `setup` (which must succeed) then `code`; the error `code` raised, or the `show` expressions. */
  async run(code: string, setup = "", show: Record<string, string> = {}): Promise<Ran> {
    this.child.stdin.write(`${JSON.stringify({ code, setup, show })}\n`);
    const reply = await this.replies.next();
    if (reply.done) throw new Error(`${PYTHON} stopped: ${this.stderr}`);
    return JSON.parse(reply.value) as Ran;
  }

  /** The error that `code` really raises. */
  async failure(code: string, setup = ""): Promise<ErrorInfo> {
    const { error } = await this.run(code, setup);
    if (!error) throw new Error(`expected ${JSON.stringify(code)} to fail`);
    return error;
  }

  /** The `show` expressions after `code` ran without error. */
  async values(code: string, setup: string, show: Record<string, string>): Promise<Record<string, unknown>> {
    const ran = await this.run(code, setup, show);
    if (ran.error) throw new Error(`${ran.error.name}: ${ran.error.value}\n${code}`);
    return ran.values ?? {};
  }

  close(): void {
    this.child.stdin.end();
  }
}
