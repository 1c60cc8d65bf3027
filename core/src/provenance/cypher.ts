/**
 * Every Cypher statement the provenance store runs, in one place: the schema (as numbered
 * migrations) and the parameterized statements that write and read a run.
 *
 * The graph follows W3C PROV: activities (Run, Step, Execution), entities (Code, Lesson,
 * Artifact, the dataset as an Artifact) and their relations:
 *
 *   (:Step)-[:PARENT]->(:Step)          a step built on its parent's kernel state (child -> parent)
 *   (:Step)-[:IN_RUN]->(:Run)
 *   (:Step)-[:EXECUTED]->(:Execution)   one Execution per attempt of the step's cell
 *   (:Execution)-[:HAS_CODE]->(:Code)   code content-addressed by sha256
 *   (:Code)-[:DERIVED_FROM]->(:Code)    a fix -> the cell it fixed
 *   (:Step)-[:LEARNED]->(:Lesson)
 *   (:Step)-[:GENERATED]->(:Artifact)   files a step left in the run folder
 *   (:Run)-[:USED]->(:Artifact)         the dataset
 *
 * JSON-valued properties (params, metrics, outputs, options, result) are STRING: Kùzu's JSON
 * type needs an extension that is not bundled. Statements take parameters only: user text is
 * never spliced into Cypher.
 *
 * Each statement costs about half a millisecond whatever it does, so a step is written in as
 * few as its content needs. Parameters are scalars: a list of objects passed to UNWIND comes
 * out of Kùzu 0.11's Node binding with integers read as doubles' bits (1 -> 5e-324).
 */

export interface Migration {
  version: number;
  why: string;
  /** DDL, run in order in one transaction with the version's SchemaVersion node */
  statements: string[];
}

/** Append only: a database records the versions it has, and `open` applies the rest. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    why: "runs, steps, executions, code, lessons and artifacts after W3C PROV",
    statements: [
      "CREATE NODE TABLE SchemaVersion(version INT64 PRIMARY KEY, why STRING, applied_at STRING)",
      `CREATE NODE TABLE Run(id STRING PRIMARY KEY, dataset_path STRING, dataset_sha256 STRING,
        dataset_bytes INT64, rows INT64, columns INT64, target STRING, task STRING, metric STRING,
        question STRING, seed INT64, budget STRING, options STRING, config STRING, started_at STRING,
        status STRING, result STRING, ended_at STRING)`,
      `CREATE NODE TABLE Step(id INT64 PRIMARY KEY, kind STRING, template_id STRING,
        hypothesis STRING, params STRING, verdict STRING, metric STRING, score DOUBLE,
        metrics STRING, gain DOUBLE, duration_s DOUBLE, attempts INT64, error STRING,
        lesson STRING, started_at STRING, ended_at STRING)`,
      `CREATE NODE TABLE Execution(id STRING PRIMARY KEY, step INT64, attempt INT64, ok BOOLEAN,
        stdout STRING, stderr STRING, error STRING, outputs STRING, duration_s DOUBLE,
        fix_rule STRING, feedback STRING)`,
      "CREATE NODE TABLE Code(sha256 STRING PRIMARY KEY, text STRING)",
      "CREATE NODE TABLE Lesson(step INT64 PRIMARY KEY, text STRING)",
      `CREATE NODE TABLE Artifact(id STRING PRIMARY KEY, sha256 STRING, path STRING,
        media_type STRING, bytes INT64)`,
      "CREATE REL TABLE PARENT(FROM Step TO Step)",
      "CREATE REL TABLE IN_RUN(FROM Step TO Run)",
      "CREATE REL TABLE EXECUTED(FROM Step TO Execution)",
      "CREATE REL TABLE HAS_CODE(FROM Execution TO Code)",
      "CREATE REL TABLE DERIVED_FROM(FROM Code TO Code)",
      "CREATE REL TABLE LEARNED(FROM Step TO Lesson)",
      "CREATE REL TABLE GENERATED(FROM Step TO Artifact)",
      "CREATE REL TABLE USED(FROM Run TO Artifact)",
    ],
  },
];

/** A database without a SchemaVersion table is at version 0 (new, or made by no migration). */
export const SHOW_TABLES = "CALL show_tables() RETURN name";

/** The parameterized statements, prepared once per connection. */
export const STATEMENTS = {
  schemaVersion: "MATCH (v:SchemaVersion) RETURN max(v.version) AS version",
  recordVersion: "CREATE (:SchemaVersion {version: $version, why: $why, applied_at: $at})",

  createRun: `CREATE (:Run {id: $id, dataset_path: $path, dataset_sha256: $sha256,
    dataset_bytes: $bytes, rows: $rows, columns: $columns, target: $target, task: $task,
    metric: $metric, question: $question, seed: $seed, budget: $budget, options: $options,
    config: $config, started_at: $startedAt, status: 'running'})`,
  useArtifact: `MATCH (r:Run {id: $run})
    MERGE (a:Artifact {id: $id})
      ON CREATE SET a.sha256 = $sha256, a.path = $path, a.media_type = $mediaType, a.bytes = $bytes
    CREATE (r)-[:USED]->(a)`,
  finishRun: "MATCH (r:Run {id: $id}) SET r.status = $status, r.result = $result, r.ended_at = $at",

  stepExists: "MATCH (s:Step {id: $id}) RETURN count(s) AS n",
  /** the step, in its run, linked to its parent: returns how many parents it was linked to */
  createStep: `MATCH (r:Run {id: $run})
    CREATE (s:Step {id: $id, kind: $kind, template_id: $templateId, hypothesis: $hypothesis,
      params: $params, verdict: $verdict, metric: $metric, score: $score, metrics: $metrics,
      gain: $gain, duration_s: $durationS, attempts: $attempts, error: $error, lesson: $lesson,
      started_at: $startedAt, ended_at: $endedAt})-[:IN_RUN]->(r)
    WITH s
    MATCH (p:Step {id: $parent})
    CREATE (s)-[:PARENT]->(p)
    RETURN count(*) AS parents`,
  createExecution: `MATCH (s:Step {id: $step})
    MERGE (c:Code {sha256: $sha256}) ON CREATE SET c.text = $code
    CREATE (s)-[:EXECUTED]->(:Execution {id: $id, step: $step, attempt: $attempt, ok: $ok,
      stdout: $stdout, stderr: $stderr, error: $error, outputs: $outputs, duration_s: $durationS,
      fix_rule: $fixRule, feedback: $feedback})-[:HAS_CODE]->(c)`,
  /** a fix's code derives from the code it fixed (a separate statement: folded into the one
   * above, Kùzu plans the second MATCH as a join and it costs more than a second call) */
  deriveCode: `MATCH (fix:Code {sha256: $fix}), (fixed:Code {sha256: $fixed})
    MERGE (fix)-[:DERIVED_FROM]->(fixed)`,
  learn: "MATCH (s:Step {id: $step}) CREATE (s)-[:LEARNED]->(:Lesson {step: $step, text: $text})",
  generate: `MATCH (s:Step {id: $step})
    MERGE (a:Artifact {id: $id})
      ON CREATE SET a.sha256 = $sha256, a.path = $path, a.media_type = $mediaType, a.bytes = $bytes
    CREATE (s)-[:GENERATED]->(a)`,

  readRun: `MATCH (r:Run)-[:USED]->(a:Artifact)
    RETURN r.id AS id, a.media_type AS mediaType, r.dataset_path AS path, r.dataset_sha256 AS sha256,
    r.dataset_bytes AS bytes, r.rows AS rows, r.columns AS columns, r.target AS target,
    r.task AS task, r.metric AS metric, r.question AS question, r.seed AS seed,
    r.budget AS budget, r.options AS options, r.config AS config, r.started_at AS startedAt, r.status AS status,
    r.result AS result`,
  readSteps: `MATCH (s:Step) OPTIONAL MATCH (s)-[:PARENT]->(p:Step)
    RETURN s.id AS id, p.id AS parent, s.template_id AS templateId, s.kind AS kind,
      s.hypothesis AS hypothesis, s.params AS params, s.verdict AS verdict, s.metrics AS metrics,
      s.gain AS gain, s.duration_s AS durationS, s.attempts AS attempts, s.error AS error,
      s.lesson AS lesson
    ORDER BY s.id`,
  readExecutions: `MATCH (s:Step)-[:EXECUTED]->(e:Execution)-[:HAS_CODE]->(c:Code)
    RETURN s.id AS step, c.text AS code, e.ok AS ok, e.stdout AS stdout, e.stderr AS stderr,
      e.error AS error, e.outputs AS outputs, e.duration_s AS durationS
    ORDER BY s.id, e.attempt`,
} as const;

export type StatementName = keyof typeof STATEMENTS;
