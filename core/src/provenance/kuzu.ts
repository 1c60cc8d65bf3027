/**
 * The provenance store on embedded Kùzu: one database per run, `<run>/provenance.kuzu`,
 * owned by the one process that runs the loop (Kùzu admits one read-write opener).
 *
 * Kùzu runs a connection's statements one after another, and a transaction belongs to the
 * connection: every operation here waits its turn, so concurrent `recordStep` calls (parallel
 * branches) never interleave inside each other's transaction.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { Connection, Database, type KuzuValue, type PreparedStatement, type QueryResult } from "kuzu";
import { type Attempt, Execution, StepSummary } from "../messages.ts";
import { MIGRATIONS, SHOW_TABLES, STATEMENTS, type StatementName } from "./cypher.ts";
import {
  type ArtifactRef,
  ProvenanceError,
  type ProvenanceStore,
  RecordedRun,
  type RecordedStep,
  RunMeta,
  RunResult,
} from "./store.ts";

export const DATABASE_NAME = "provenance.kuzu";

/** A run's provenance is small; Kùzu's default pool would reserve most of the machine's memory. */
const BUFFER_POOL_BYTES = 256 * 1024 * 1024;

type Row = Record<string, KuzuValue>;
type Params = Record<string, KuzuValue>;

export class RunStore implements ProvenanceStore {
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly runDir: string,
    private readonly db: Database,
    private readonly conn: Connection,
    private readonly statements: Map<StatementName, PreparedStatement>,
    private runId: string | null,
  ) {}

  /** Open (or create) the run folder's database and bring its schema to the newest version. */
  static async open(runDir: string): Promise<RunStore> {
    await mkdir(runDir, { recursive: true });
    const path = join(runDir, DATABASE_NAME);
    const db = new Database(path, BUFFER_POOL_BYTES);
    try {
      await db.init();
    } catch (error) {
      throw new ProvenanceError(`${path} cannot be opened: ${openFailure(error)}`);
    }
    const conn = new Connection(db);
    try {
      await conn.init();
      await migrate(conn, path);
      const statements = await prepareAll(conn);
      const store = new RunStore(runDir, db, conn, statements, null);
      store.runId = (await store.run())?.id ?? null;
      return store;
    } catch (error) {
      await conn.close();
      await db.close();
      throw error;
    }
  }

  /** Open the database of an existing run (for resume): never creates one. */
  static async openExisting(runDir: string): Promise<RunStore> {
    if (!existsSync(join(runDir, DATABASE_NAME))) {
      throw new ProvenanceError(`no run in ${runDir}: ${DATABASE_NAME} not found`);
    }
    const store = await RunStore.open(runDir);
    if (store.runId === null) {
      await store.close();
      throw new ProvenanceError(`no run in ${runDir}: its ${DATABASE_NAME} records none`);
    }
    return store;
  }

  recordRun(meta: RunMeta): Promise<void> {
    const m = RunMeta.parse(meta);
    return this.serial(() =>
      inTransaction(this.conn, async () => {
        if (this.runId !== null) throw new ProvenanceError(`${this.path} already records run ${this.runId}`);
        const { dataset: d } = m;
        await this.exec("createRun", {
          id: m.id,
          path: d.path,
          sha256: d.sha256,
          bytes: d.bytes,
          rows: d.rows,
          columns: d.columns,
          target: m.target,
          task: m.task,
          metric: m.metric,
          question: m.question,
          seed: m.seed,
          budget: JSON.stringify(m.budget),
          options: JSON.stringify(m.options),
          config: JSON.stringify(m.config),
          startedAt: m.startedAt,
        });
        const artifact = { id: artifactId(d.sha256, d.path), sha256: d.sha256, path: d.path };
        await this.exec("useArtifact", { run: m.id, ...artifact, mediaType: d.mediaType, bytes: d.bytes });
        this.runId = m.id;
      }),
    );
  }

  async recordStep(
    step: StepSummary,
    attempts: Attempt[],
    startedAt: string,
    artifacts: ArtifactRef[] = [],
  ): Promise<boolean> {
    if (attempts.length === 0) throw new ProvenanceError(`step ${step.id} has no attempt to record`);
    // files are read before the transaction opens: it holds only writes
    const files = await Promise.all(unique(artifacts).map((a) => this.describe(a, step.id)));
    return this.serial(async () => {
      try {
        await inTransaction(this.conn, async () => {
          const [linked] = await this.exec("createStep", stepParams(step, this.requireRun(), startedAt));
          if (step.parent !== null && Number(linked?.parents) !== 1) {
            throw new ProvenanceError(`step ${step.id}: its parent step ${step.parent} is not recorded`);
          }
          await this.recordAttempts(step.id, attempts);
          if (step.lesson) await this.exec("learn", { step: step.id, text: step.lesson });
          for (const file of files) await this.exec("generate", { step: step.id, ...file });
        });
        return true;
      } catch (error) {
        // the step's primary key refused it: a redelivered step, already recorded whole
        const [existing] = await this.exec("stepExists", { id: step.id });
        if (Number(existing?.n) > 0) return false;
        throw error;
      }
    });
  }

  recordResult(result: RunResult): Promise<void> {
    const r = RunResult.parse(result);
    return this.serial(async () => {
      const id = this.requireRun();
      await this.exec("finishRun", { id, status: r.status, result: JSON.stringify(r), at: now() });
    });
  }

  steps(): Promise<RecordedStep[]> {
    return this.serial(async () => {
      const last = new Map<number, Row>();
      // ordered by attempt: the last attempt of each step wins
      for (const row of await this.exec("readExecutions")) last.set(Number(row.step), row);
      return (await this.exec("readSteps")).map((row) => {
        const execution = last.get(Number(row.id));
        if (!execution) throw new ProvenanceError(`${this.path}: step ${row.id} has no execution`);
        return { summary: toSummary(row), code: String(execution.code), execution: toExecution(execution) };
      });
    });
  }

  run(): Promise<RecordedRun | null> {
    return this.serial(async () => {
      const [row] = await this.exec("readRun");
      return row ? toRun(row) : null;
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.queue;
    await this.conn.close();
    await this.db.close();
  }

  private get path(): string {
    return join(this.runDir, DATABASE_NAME);
  }

  private requireRun(): string {
    if (this.runId === null) {
      throw new ProvenanceError(`${this.path} records no run yet: record the run first`);
    }
    return this.runId;
  }

  /** One Execution per attempt; a fix's code derives from the code of the attempt before it. */
  private async recordAttempts(step: number, attempts: Attempt[]): Promise<void> {
    let previous: string | null = null;
    for (const [attempt, a] of attempts.entries()) {
      const sha256 = hash(a.code);
      await this.exec("createExecution", executionParams(step, attempt, a, sha256));
      if (previous !== null && previous !== sha256) {
        await this.exec("deriveCode", { fix: sha256, fixed: previous });
      }
      previous = sha256;
    }
  }

  private async describe(artifact: ArtifactRef, step: number): Promise<Params> {
    let data: Buffer;
    try {
      data = await readFile(join(this.runDir, artifact.path));
    } catch (error) {
      throw new ProvenanceError(
        `step ${step}: artifact ${artifact.path} cannot be read: ${firstLine(error)}`,
      );
    }
    const sha256 = hash(data);
    const { path, mediaType } = artifact;
    return { id: artifactId(sha256, path), sha256, path, mediaType, bytes: data.length };
  }

  private async exec(name: StatementName, params: Params = {}): Promise<Row[]> {
    const statement = this.statements.get(name)!;
    return rowsOf(await this.conn.execute(statement, params));
  }

  private serial<T>(work: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ProvenanceError(`${this.path} is closed`));
    const next = this.queue.then(work);
    this.queue = next.catch(() => undefined); // one failed operation does not block the next
    return next;
  }
}

// ---- schema --------------------------------------------------------------------------

async function migrate(conn: Connection, path: string): Promise<void> {
  const current = await schemaVersion(conn);
  const newest = MIGRATIONS.at(-1)?.version ?? 0;
  if (current > newest) {
    throw new ProvenanceError(`${path} has schema version ${current}, newer than this dsassist's ${newest}`);
  }
  for (const migration of MIGRATIONS.filter((m) => m.version > current)) {
    await inTransaction(conn, async () => {
      for (const ddl of migration.statements) await query(conn, ddl);
      const record = await conn.prepare(STATEMENTS.recordVersion);
      const { version, why } = migration;
      await rowsOf(await conn.execute(record, { version, why, at: now() }));
    });
  }
}

async function schemaVersion(conn: Connection): Promise<number> {
  const tables = await query(conn, SHOW_TABLES);
  if (!tables.some((t) => t.name === "SchemaVersion")) return 0;
  const [row] = await query(conn, STATEMENTS.schemaVersion);
  return Number(row?.version ?? 0);
}

async function prepareAll(conn: Connection): Promise<Map<StatementName, PreparedStatement>> {
  const prepared = new Map<StatementName, PreparedStatement>();
  for (const [name, text] of Object.entries(STATEMENTS) as [StatementName, string][]) {
    const statement = await conn.prepare(text);
    if (!statement.isSuccess()) throw new Error(`Cypher ${name}: ${statement.getErrorMessage()}`);
    prepared.set(name, statement);
  }
  return prepared;
}

// ---- values in and out ---------------------------------------------------------------

function stepParams(step: StepSummary, run: string, startedAt: string): Params {
  const m = step.metrics;
  return {
    run,
    id: step.id,
    parent: step.parent,
    kind: step.kind,
    templateId: step.templateId,
    hypothesis: step.hypothesis,
    params: JSON.stringify(step.params),
    verdict: step.verdict,
    metric: m?.metric ?? null,
    score: m?.mean ?? null,
    metrics: m ? JSON.stringify(m) : null,
    gain: step.gain,
    durationS: step.durationS,
    attempts: step.attempts,
    error: step.error,
    lesson: step.lesson,
    startedAt,
    // when the step ended, not when it was written: the controller records behind the loop
    endedAt: new Date(Date.parse(startedAt) + step.durationS * 1000).toISOString(),
  };
}

function executionParams(step: number, attempt: number, a: Attempt, sha256: string): Params {
  const e = a.execution;
  return {
    step,
    attempt,
    sha256,
    code: a.code,
    id: `${step}/${attempt}`,
    ok: e.ok,
    stdout: e.stdout,
    stderr: e.stderr,
    error: e.error ? JSON.stringify(e.error) : null,
    outputs: JSON.stringify(e.outputs),
    durationS: e.durationS,
    fixRule: a.fixRule,
    feedback: a.feedback,
  };
}

function toSummary(row: Row): StepSummary {
  return StepSummary.parse({ ...row, params: fromJson(row.params), metrics: fromJson(row.metrics) });
}

function toExecution(row: Row): Execution {
  const error = fromJson(row.error) ?? undefined; // absent, not null, in an Execution
  return Execution.parse({ ...row, error, outputs: fromJson(row.outputs) });
}

function toRun(row: Row): RecordedRun {
  const { path, sha256, bytes, rows, columns, mediaType } = row;
  return RecordedRun.parse({
    ...row,
    dataset: { path, sha256, bytes, rows, columns, mediaType },
    budget: fromJson(row.budget),
    options: fromJson(row.options),
    config: fromJson(row.config),
    result: fromJson(row.result),
  });
}

function fromJson(value: KuzuValue | undefined): unknown {
  return typeof value === "string" ? JSON.parse(value) : null;
}

function unique(artifacts: ArtifactRef[]): ArtifactRef[] {
  return [...new Map(artifacts.map((a) => [a.path, a])).values()];
}

/** One node per file version: the same path rewritten with new content is a new artifact. */
function artifactId(sha256: string, path: string): string {
  return `${sha256}:${path}`;
}

function hash(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

function now(): string {
  return new Date().toISOString();
}

/** Kùzu admits one read-write process per database; its lock error does not say so. */
function openFailure(error: unknown): string {
  const reason = firstLine(error);
  return /could not set lock/i.test(reason) ? "another process has it open (one writer at a time)" : reason;
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split("\n")[0]!;
}

// ---- Kùzu results ----------------------------------------------------------------------

async function inTransaction<T>(conn: Connection, work: () => Promise<T>): Promise<T> {
  await query(conn, "BEGIN TRANSACTION");
  let result: T;
  try {
    result = await work();
  } catch (error) {
    // a failed statement has already rolled the transaction back; a failure of ours has not
    await query(conn, "ROLLBACK").catch(() => undefined);
    throw error;
  }
  await query(conn, "COMMIT");
  return result;
}

async function query(conn: Connection, text: string): Promise<Row[]> {
  return rowsOf(await conn.query(text));
}

/** The rows of the last result; every result is closed (an open one crashes the process at exit). */
async function rowsOf(result: QueryResult | QueryResult[]): Promise<Row[]> {
  const results = Array.isArray(result) ? result : [result];
  try {
    let rows: Row[] = [];
    for (const r of results) rows = await r.getAll();
    return rows;
  } finally {
    for (const r of results) r.close();
  }
}
