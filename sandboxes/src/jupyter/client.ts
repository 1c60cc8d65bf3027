/**
 * One kernel process and its ZeroMQ sockets: a connection file written here, ipykernel
 * launched on it, requests sent on shell/control, iopub messages routed to the request
 * they answer (by parent header).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as zmq from "zeromq";
import { SandboxError } from "../types.ts";
import { type Message, Wire, WireError } from "./wire.ts";

/** ipc endpoints are `ipc://<ip>-<port>`: the "ports" only name the socket files. */
const PORTS = { shell_port: 1, iopub_port: 2, stdin_port: 3, control_port: 4, hb_port: 5 };
/** zmq retries a connect every 100 ms by default; a pooled kernel binds within milliseconds */
const RECONNECT_MS = 10;
const READY_RETRY_MS = 250;

export interface Connection {
  /** the connection file, inside `socketDir` */
  file: string;
  socketDir: string;
  key: string;
  ip: string;
}

/** Write a connection file for an ipc kernel whose sockets live in `socketDir`. */
export function writeConnection(socketDir: string): Connection {
  const file = join(socketDir, "kernel.json");
  const ip = join(socketDir, "kernel");
  const key = randomBytes(32).toString("hex");
  const info = {
    ...PORTS,
    ip,
    key,
    transport: "ipc",
    signature_scheme: "hmac-sha256",
    kernel_name: "python3",
  };
  writeFileSync(file, JSON.stringify(info), { mode: 0o600 });
  return { file, socketDir, key, ip };
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface LaunchOptions {
  /** the whole command line, confinement wrappers first; ipykernel reads `connection.file` */
  command: string[];
  env: Record<string, string>;
  cwd: string;
  /** where the kernel's own stdout and stderr go */
  logFd: number;
}

/** A request in flight: its reply, and the idle status that follows its last output. */
export interface Request {
  msgId: string;
  reply: Promise<Message>;
  idle: Promise<void>;
  /** stop routing this request's messages */
  end(): void;
}

interface Route {
  onIopub?: (message: Message) => void;
  replied(message: Message): void;
  idled(): void;
}

const live = new Set<KernelClient>();
let exitHookInstalled = false;

/**
 * No kernel outlives this process, even where bubblewrap's --die-with-parent does not apply,
 * and no socket folder stays behind (a crash skips close()).
 */
function killAllOnExit(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.once("exit", () => {
    for (const client of live) {
      client.kill();
      rmSync(client.connection.socketDir, { recursive: true, force: true });
    }
  });
}

export class KernelClient {
  readonly exited: Promise<ExitStatus>;
  exitStatus: ExitStatus | null = null;
  private readonly wire: Wire;
  private readonly shell = new zmq.Dealer({ reconnectInterval: RECONNECT_MS, linger: 0 });
  private readonly control = new zmq.Dealer({ reconnectInterval: RECONNECT_MS, linger: 0 });
  private readonly iopub = new zmq.Subscriber({ reconnectInterval: RECONNECT_MS, linger: 0 });
  private readonly routes = new Map<string, Route>();
  private iopubSeen = false;
  private readyPromise: Promise<void> | null = null;

  private constructor(
    readonly connection: Connection,
    private readonly child: ChildProcess,
  ) {
    this.wire = new Wire(connection.key);
    this.exited = new Promise((resolve) => {
      child.once("exit", (code, signal) => {
        this.exitStatus = { code, signal };
        live.delete(this);
        resolve(this.exitStatus);
      });
    });
    const endpoint = (port: number) => `ipc://${connection.ip}-${port}`;
    this.shell.connect(endpoint(PORTS.shell_port));
    this.control.connect(endpoint(PORTS.control_port));
    this.iopub.connect(endpoint(PORTS.iopub_port));
    this.iopub.subscribe();
    void this.pump(this.shell, (message) => this.routeOf(message)?.replied(message));
    void this.pump(this.control, (message) => this.routeOf(message)?.replied(message));
    void this.pump(this.iopub, (message) => this.onIopub(message));
  }

  /** Start the kernel process (in its own process group) and connect to its sockets. */
  static launch(connection: Connection, options: LaunchOptions): KernelClient {
    const [program, ...args] = options.command;
    if (program === undefined) throw new SandboxError("the kernel command is empty");
    const child = spawn(program, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ["ignore", options.logFd, options.logFd],
      detached: true,
    });
    child.on("error", () => {}); // a failed spawn shows as an exit
    const client = new KernelClient(connection, child);
    live.add(client);
    killAllOnExit();
    return client;
  }

  get alive(): boolean {
    return this.exitStatus === null;
  }

  /**
   * Until a kernel_info request has its reply and iopub delivers (the welcome or a status):
   * a subscription made before the kernel bound its socket can miss the first messages, so
   * the request is repeated until both arrive.
   */
  ready(timeoutMs: number): Promise<void> {
    this.readyPromise ??= this.waitReady(timeoutMs);
    return this.readyPromise;
  }

  private async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const request = this.send(this.shell, "kernel_info_request", {});
      const answered = await Promise.race([
        request.reply.then(() => true),
        this.exited.then(() => false),
        sleep(READY_RETRY_MS).then(() => false),
      ]);
      request.end();
      if (!this.alive) throw new SandboxError("the kernel died while starting; see kernel.log");
      if (answered && this.iopubSeen) return;
      if (answered) await Promise.race([sleep(READY_RETRY_MS), this.exited]);
      if (answered && this.iopubSeen) return;
    }
    throw new SandboxError(
      `the kernel did not start within ${Math.round(timeoutMs / 1000)}s; see kernel.log`,
    );
  }

  /** Send an execute_request; `onIopub` sees every iopub message it causes. */
  execute(content: Record<string, unknown>, onIopub?: (message: Message) => void): Request {
    return this.send(this.shell, "execute_request", content, onIopub);
  }

  /** Ask the kernel to interrupt the running cell (a signal would reach bubblewrap instead). */
  interrupt(): Request {
    return this.send(this.control, "interrupt_request", {});
  }

  /** SIGKILL the process group: the kernel and whatever it forked (bubblewrap takes its namespace). */
  kill(): void {
    if (!this.alive || this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, "SIGKILL");
    } catch {
      // already gone
    }
  }

  /** End the kernel, close the sockets, remove the socket folder. */
  async close(): Promise<void> {
    this.kill();
    if (this.child.pid !== undefined) await this.exited;
    for (const socket of [this.shell, this.control, this.iopub]) socket.close();
    rmSync(this.connection.socketDir, { recursive: true, force: true });
  }

  private send(
    socket: zmq.Dealer,
    msgType: string,
    content: Record<string, unknown>,
    onIopub?: (message: Message) => void,
  ): Request {
    const { msgId, frames } = this.wire.request(msgType, content);
    let replied: (message: Message) => void = () => {};
    let idled: () => void = () => {};
    const reply = new Promise<Message>((resolve) => {
      replied = resolve;
    });
    const idle = new Promise<void>((resolve) => {
      idled = resolve;
    });
    this.routes.set(msgId, { onIopub, replied, idled });
    socket.send(frames).catch(() => {}); // a closed socket: the caller sees the kernel's exit
    return { msgId, reply, idle, end: () => this.routes.delete(msgId) };
  }

  private routeOf(message: Message): Route | undefined {
    const parent = message.parent_header.msg_id;
    return parent === undefined ? undefined : this.routes.get(parent);
  }

  private onIopub(message: Message): void {
    this.iopubSeen = true;
    const route = this.routeOf(message);
    if (route === undefined) return;
    route.onIopub?.(message);
    if (message.header.msg_type === "status" && message.content.execution_state === "idle") route.idled();
  }

  private async pump(
    socket: zmq.Dealer | zmq.Subscriber,
    dispatch: (message: Message) => void,
  ): Promise<void> {
    try {
      for await (const frames of socket) {
        try {
          dispatch(this.wire.parse(frames));
        } catch (error) {
          if (!(error instanceof WireError)) throw error;
          // unsigned or malformed: not from our kernel, never acted on
        }
      }
    } catch (error) {
      if (!socket.closed) throw error;
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
