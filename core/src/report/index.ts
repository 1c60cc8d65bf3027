export {
  type AnswerFacts,
  DriversRecord,
  ProfileRecord,
  ReportInput,
  type ReportInputData,
  ValidationRecord,
} from "./input.ts";
export { answerFor, REPORT_NAME, reportText, writeReport } from "./markdown.ts";
export { type PathCell, writeNotebook } from "./notebook.ts";
export { tree } from "./tree.ts";
