/** Running the real `dsassist` command, and reading what a run recorded. */
import { type ChildProcess, spawn } from "node:child_process";
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
  return rows.map((r) => ({ ...r, id: Number(r.id), parent: r.parent === null ? null : Number(r.parent) }));
}
