export { MIGRATIONS, type Migration, STATEMENTS } from "./cypher.ts";
export { DATABASE_NAME, RunStore } from "./kuzu.ts";
export {
  type ArtifactRef,
  DatasetMeta,
  ProvenanceError,
  type ProvenanceStore,
  RecordedRun,
  type RecordedStep,
  RunMeta,
  RunResult,
} from "./store.ts";
