/** Running the real `dsassist` command, and reading what a run recorded. */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import kuzu from "kuzu";

export const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const BIN = `${ROOT}bin/dsassist.js`;
export const example = (name: string) => `${ROOT}examples/${name}.csv`;

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function start(args: string[], options: { detached?: boolean } = {}): ChildProcess {
  return spawn(process.execPath, [BIN, ...args], {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    detached: options.detached ?? false,
  });
}

export function dsassist(...args: string[]): Promise<Ran> {
  const child = start(args);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d) => {
    stdout += d;
  });
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  return new Promise((resolve) => child.on("close", (code) => resolve({ code, stdout, stderr })));
}

/** Rows of a read-only Cypher query on a finished run's provenance. */
export async function cypher(runDir: string, query: string): Promise<Record<string, unknown>[]> {
  const db = new kuzu.Database(`${runDir}/provenance.kuzu`, 0, true, true);
  const conn = new kuzu.Connection(db);
  try {
    const result = await conn.query(query);
    const single = Array.isArray(result) ? result[0]! : result;
    const rows = await single.getAll();
    single.close();
    return rows as Record<string, unknown>[];
  } finally {
    await conn.close();
    await db.close();
  }
}

/** The recorded steps, as the resume and determinism tests compare them. */
export async function stepRows(runDir: string) {
  const rows = await cypher(
    runDir,
    `MATCH (s:Step) OPTIONAL MATCH (s)-[:PARENT]->(p:Step)
     RETURN s.id AS id, p.id AS parent, s.template_id AS template, s.verdict AS verdict, s.score AS score
     ORDER BY s.id`,
  );
  return rows.map((r) => ({
    id: Number(r.id),
    parent: r.parent === null ? null : Number(r.parent),
    template: String(r.template),
    verdict: String(r.verdict),
    score: r.score === null ? null : Number(r.score),
  }));
}

/** A fresh folder for one test's run folders. */
export const tmp = () => mkdtempSync(join(tmpdir(), "dsassist-e2e-"));

/** A run folder's result.json. */
export const resultOf = (runDir: string) => JSON.parse(readFileSync(join(runDir, "result.json"), "utf8"));

/**
 * How many steps a live run has recorded: the controller writes a note to steps/ after each
 * recorded step (the database cannot be read while the run holds it: one process per database).
 */
export function recordedSteps(runDir: string): number {
  try {
    return readdirSync(join(runDir, "steps")).length;
  } catch {
    return 0;
  }
}

/** The exit code of a started command (null when a signal ended it). */
export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/**
 * Start `dsassist` in a process group of its own and send `signal` to the whole group (what a
 * terminal does) once `runDir` holds `steps` recorded steps; the exit code, once it ended.
 * Throws when the run ends before that: the signal would test nothing.
 */
export async function signalAfter(args: string[], runDir: string, steps: number, signal: NodeJS.Signals) {
  const child = start(args, { detached: true });
  child.stdout?.resume();
  let stderr = "";
  child.stderr?.on("data", (d) => {
    stderr += d;
  });
  while (recordedSteps(runDir) < steps) {
    if (child.exitCode !== null) throw new Error(`the run ended before ${steps} steps: ${stderr}`);
    await sleep(20);
  }
  process.kill(-child.pid!, signal);
  return exited(child);
}
