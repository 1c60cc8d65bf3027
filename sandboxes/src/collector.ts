/**
 * The iopub messages of one cell, accumulated into an Execution: streams capped (head and
 * tail kept), rich outputs reduced to one Output each, images saved as files, errors named
 * after the sandbox limit that caused them.
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, mkdirSync, openSync, realpathSync, writeSync } from "node:fs";
import { join, relative } from "node:path";
import type { Message } from "./jupyter/wire.ts";
import type { ErrorInfo, Execution, Output } from "./types.ts";

// colour codes in tracebacks: ESC [ ... letter (built from a string: the linter bans control characters in literals)
const ANSI = new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*[A-Za-z]`, "g");
const RECORD_MIME = /^application\/vnd\.dsassist\.[a-z_]+\+json$/;

/** Text that keeps its first and last `limit / 2` characters, however much arrives. */
export class Capped {
  private readonly half: number;
  private head = "";
  private tail: string[] = [];
  private tailLength = 0;
  private cut = 0;

  constructor(limit: number) {
    this.half = Math.floor(limit / 2);
  }

  add(text: string): void {
    if (this.head.length < this.half) {
      const room = this.half - this.head.length;
      this.head += text.slice(0, room);
      text = text.slice(room);
    }
    if (text === "") return;
    this.tail.push(text);
    this.tailLength += text.length;
    // drop whole chunks that the tail no longer needs
    while (this.tail.length > 0 && this.tailLength - (this.tail[0] as string).length >= this.half) {
      const dropped = this.tail.shift() as string;
      this.tailLength -= dropped.length;
      this.cut += dropped.length;
    }
  }

  text(): string {
    let tail = this.tail.join("");
    const extra = Math.max(0, tail.length - this.half);
    tail = tail.slice(extra);
    const cut = this.cut + extra;
    return cut === 0 ? this.head + tail : `${this.head}\n... [${cut} characters cut] ...\n${tail}`;
  }
}

/** Keep the head and the tail of an output flood. */
export function truncate(text: string, limit: number): string {
  const capped = new Capped(limit);
  capped.add(text);
  return capped.text();
}

const LIMIT_ERRORS: [limit: string, names: string[], text: string][] = [
  ["MemoryLimit", ["MemoryError", "_ArrayMemoryError"], ""],
  ["ProcessLimit", ["BlockingIOError", "OSError"], "Resource temporarily unavailable"],
  ["FileSizeLimit", ["OSError"], "File too large"],
];

/** An exception that a sandbox limit caused, renamed after the limit (the original kept in the value). */
export function nameLimit(error: ErrorInfo): ErrorInfo {
  for (const [limit, names, text] of LIMIT_ERRORS) {
    if (names.includes(error.name) && error.value.includes(text)) {
      return { name: limit, value: `${error.name}: ${error.value}`, traceback: error.traceback };
    }
  }
  return error;
}

export class Collector {
  private readonly stdout: Capped;
  private readonly stderr: Capped;
  private readonly outputs: Output[] = [];
  error: ErrorInfo | undefined;

  /** `artifacts` is where images go; output paths are relative to its parent (the run folder). */
  constructor(
    private readonly artifacts: string,
    private readonly limit: number,
  ) {
    this.stdout = new Capped(limit);
    this.stderr = new Capped(limit);
  }

  readonly handle = (message: Message): void => {
    const content = message.content;
    switch (message.header.msg_type) {
      case "stream":
        (content.name === "stdout" ? this.stdout : this.stderr).add(String(content.text));
        break;
      case "display_data":
      case "execute_result":
        this.outputs.push(...this.bundle(content.data as Record<string, unknown>));
        break;
      case "error":
        this.error = {
          name: String(content.ename),
          value: String(content.evalue),
          traceback: (content.traceback as string[]).map((line) => String(line).replace(ANSI, "")),
        };
        break;
    }
  };

  result(durationS: number): Execution {
    return {
      ok: this.error === undefined,
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      error: this.error,
      outputs: this.outputs,
      durationS,
    };
  }

  /** One Output for the richest useful representation in a MIME bundle. */
  private bundle(data: Record<string, unknown>): Output[] {
    for (const [mime, value] of Object.entries(data)) {
      if (RECORD_MIME.test(mime)) {
        const record = typeof value === "string" ? JSON.parse(value) : value;
        return [{ mime, data: record as Record<string, unknown> }];
      }
    }
    if (typeof data["image/png"] === "string")
      return [this.saveImage(Buffer.from(data["image/png"], "base64"))];
    if (typeof data["text/plain"] === "string") {
      return [{ mime: "text/plain", text: truncate(data["text/plain"], this.limit) }];
    }
    return [];
  }

  private saveImage(png: Buffer): Output {
    mkdirSync(this.artifacts, { recursive: true });
    if (realpathSync(this.artifacts) !== this.artifacts) {
      return { mime: "text/plain", text: "[image dropped: the artifacts folder was replaced by a link]" };
    }
    const path = join(this.artifacts, `${createHash("sha256").update(png).digest("hex").slice(0, 16)}.png`);
    if (!writeNoFollow(path, png)) {
      return { mime: "text/plain", text: "[image dropped: its file was replaced by something else]" };
    }
    return { mime: "image/png", path: relative(join(this.artifacts, ".."), path) };
  }
}

/**
 * Write a file the kernel could have replaced: never through a symlink, never blocking on
 * a FIFO, only into a regular file. False when the path is something else.
 */
export function writeNoFollow(path: string, data: Buffer, append = false): boolean {
  const fd = openNoFollow(path, append);
  if (fd === undefined) return false;
  try {
    writeSync(fd, data);
  } finally {
    closeSync(fd);
  }
  return true;
}

/** A descriptor for writing `path`, or undefined when it is a link, a FIFO, or no regular file. */
export function openNoFollow(path: string, append = true): number | undefined {
  const { O_WRONLY, O_CREAT, O_NOFOLLOW, O_NONBLOCK, O_APPEND, O_TRUNC } = constants;
  let fd: number;
  try {
    fd = openSync(path, O_WRONLY | O_CREAT | O_NOFOLLOW | O_NONBLOCK | (append ? O_APPEND : O_TRUNC), 0o644);
  } catch {
    return undefined;
  }
  if (!fstatSync(fd).isFile()) {
    closeSync(fd);
    return undefined;
  }
  return fd;
}
