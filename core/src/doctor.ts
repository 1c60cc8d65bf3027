/**
 * `dsassist doctor`: what this machine offers DSAssist (Node, the kernel interpreter,
 * bubblewrap, a NATS server, a Docker engine), each with a fix when it is missing.
 */
import { execFile } from "node:child_process";
import { request } from "node:http";
import { connect } from "node:net";
import { promisify } from "node:util";
import { describeKernelPython } from "@dsassist/sandboxes";

const exec = promisify(execFile);

export interface Check {
  name: string;
  ok: boolean;
  /** what was found: a version, a path, an address */
  found: string;
  /** how to get it, when it is missing */
  fix?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: Check[];
}

export async function doctor(): Promise<DoctorReport> {
  const checks = await Promise.all([node(), python(), bubblewrap(), nats(), docker()]);
  // only Node and an interpreter are required: the rest widen what DSAssist can do
  const required = new Set(["node", "python"]);
  return { ok: checks.every((c) => c.ok || !required.has(c.name)), checks };
}

export function formatDoctor(report: DoctorReport): string {
  const lines = report.checks.map((c) => {
    const mark = c.ok ? "ok     " : "missing";
    return `${mark}  ${c.name.padEnd(10)} ${c.found}${c.ok || !c.fix ? "" : `\n         fix: ${c.fix}`}`;
  });
  return `${lines.join("\n")}\n`;
}

async function node(): Promise<Check> {
  const major = Number(process.versions.node.split(".")[0]);
  return {
    name: "node",
    ok: major >= 20,
    found: `v${process.versions.node} (${process.execPath})`,
    fix: "install Node.js 20 or newer",
  };
}

async function python(): Promise<Check> {
  const found = await describeKernelPython();
  return { name: "python", ok: found.ok, found: found.text, fix: found.fix };
}

async function bubblewrap(): Promise<Check> {
  try {
    await exec("bwrap", ["--ro-bind", "/", "/", "--unshare-net", "--unshare-pid", "true"], { timeout: 5000 });
    const { stdout } = await exec("bwrap", ["--version"]);
    return { name: "bubblewrap", ok: true, found: stdout.trim() };
  } catch (error) {
    const absent = (error as NodeJS.ErrnoException).code === "ENOENT";
    return {
      name: "bubblewrap",
      ok: false,
      found: absent
        ? "not installed: kernels run without isolation"
        : "installed, but may not create namespaces here",
      fix: absent
        ? "apt-get install bubblewrap"
        : "allow unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1)",
    };
  }
}

/** A NATS server greets every client with an INFO line. */
async function nats(): Promise<Check> {
  const url = new URL(process.env.NATS_URL ?? "nats://127.0.0.1:4222");
  const port = Number(url.port || 4222);
  const greeting = await new Promise<string | null>((resolve) => {
    const socket = connect({ host: url.hostname, port, timeout: 1000 });
    socket.once("data", (data) => {
      resolve(data.toString().split("\r\n")[0] ?? "");
      socket.destroy();
    });
    socket.once("error", () => resolve(null));
    socket.once("timeout", () => {
      resolve(null);
      socket.destroy();
    });
  });
  const version = greeting?.startsWith("INFO ")
    ? (JSON.parse(greeting.slice(5)) as { version?: string }).version
    : null;
  return {
    name: "nats",
    ok: version != null,
    found: version != null ? `nats-server ${version} at ${url.host}` : `no NATS server at ${url.host}`,
    fix: "nats-server -js (or set NATS_URL); needed only with --nats",
  };
}

/** A Docker-API engine answers GET /_ping with OK. */
async function docker(): Promise<Check> {
  const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  const target = host.startsWith("unix://")
    ? { socketPath: host.slice("unix://".length) }
    : {
        host: new URL(host.replace(/^tcp:/, "http:")).hostname,
        port: Number(new URL(host.replace(/^tcp:/, "http:")).port),
      };
  const answer = await new Promise<string | null>((resolve) => {
    const req = request({ ...target, path: "/_ping", timeout: 1000 }, (res) => {
      let body = "";
      res.on("data", (chunk) => {
        body += chunk;
      });
      res.on("end", () => resolve(body));
    });
    req.on("error", () => resolve(null));
    req.on("timeout", () => {
      req.destroy();
      resolve(null);
    });
    req.end();
  });
  return {
    name: "docker",
    ok: answer === "OK",
    found: answer === "OK" ? `engine at ${host}` : `no Docker engine at ${host}`,
    fix: "start a Docker engine or set DOCKER_HOST; needed only with --sandbox docker",
  };
}
