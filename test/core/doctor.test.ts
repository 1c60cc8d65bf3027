import { mkdtempSync } from "node:fs";
import { createServer as createHttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { doctor, formatDoctor } from "../../core/src/doctor.ts";

const saved = { ...process.env };
afterEach(() => {
  process.env = { ...saved };
});

const listen = (server: Server | ReturnType<typeof createHttpServer>, where: number | string) =>
  new Promise<void>((resolve) => server.listen(where as number, "127.0.0.1", () => resolve()));
const check = async (name: string) => (await doctor()).checks.find((c) => c.name === name)!;

describe("dsassist doctor", () => {
  it("finds Node and the kernel interpreter, which are all a run needs", async () => {
    const report = await doctor();
    expect(report.checks.map((c) => c.name)).toEqual(["node", "python", "bubblewrap", "nats", "docker"]);
    expect(report.checks[0]).toMatchObject({
      ok: true,
      found: expect.stringContaining(process.versions.node),
    });
    expect(report.checks[1]).toMatchObject({
      ok: true,
      found: expect.stringContaining(process.env.DSASSIST_PYTHON!),
    });
    expect(report.ok).toBe(true);
    expect(formatDoctor(report)).toMatch(/^ok +node/m);
  });

  it("says a broken interpreter is missing, with the fix, and the machine is not ready", async () => {
    process.env.DSASSIST_PYTHON = "/nonexistent/python";
    const report = await doctor();
    expect(report.ok).toBe(false);
    expect(report.checks[1]).toMatchObject({
      ok: false,
      found: expect.stringContaining("/nonexistent/python"),
    });
    expect(formatDoctor(report)).toMatch(/^missing +python[\s\S]*fix: /m);
  });

  it("reads a NATS server's version from its INFO greeting, and says where none answers", async () => {
    const server = createServer((socket) => socket.write('INFO {"server_id":"x","version":"9.9.9"}\r\n'));
    await listen(server, 0);
    const port = (server.address() as { port: number }).port;
    process.env.NATS_URL = `nats://127.0.0.1:${port}`;
    expect(await check("nats")).toMatchObject({ ok: true, found: `nats-server 9.9.9 at 127.0.0.1:${port}` });
    server.close();
    process.env.NATS_URL = "nats://127.0.0.1:1";
    expect(await check("nats")).toMatchObject({ ok: false, fix: expect.stringContaining("nats-server") });
  });

  it("pings a Docker engine on DOCKER_HOST's unix socket", async () => {
    const socket = join(mkdtempSync(join(tmpdir(), "dsassist-docker-")), "docker.sock");
    const engine = createHttpServer((req, res) => res.end(req.url === "/_ping" ? "OK" : "?"));
    await new Promise<void>((resolve) => engine.listen(socket, () => resolve()));
    process.env.DOCKER_HOST = `unix://${socket}`;
    expect(await check("docker")).toMatchObject({ ok: true, found: `engine at unix://${socket}` });
    engine.close();
    process.env.DOCKER_HOST = `unix://${socket}.gone`;
    expect(await check("docker")).toMatchObject({ ok: false, fix: expect.stringContaining("DOCKER_HOST") });
  });
});
