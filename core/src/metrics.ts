/** The metrics the kernel's toolkit knows (its METRICS table), as the host needs them. */
import type { Task } from "./messages.ts";

/** metric name -> higher is better */
export const METRICS: Record<string, boolean> = {
  roc_auc: true,
  accuracy: true,
  balanced_accuracy: true,
  log_loss: false,
  f1: true,
  rmse: false,
  mae: false,
  r2: true,
};

export const DEFAULT_METRIC: Record<Task, string> = {
  binary: "roc_auc",
  multiclass: "accuracy",
  regression: "rmse",
};

export const REGRESSION_METRICS = new Set(["rmse", "mae", "r2"]);
