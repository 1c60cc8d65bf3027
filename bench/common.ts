/** What the TypeScript benchmarks share: the machine's load, headings, statistics, target verdicts. */
import { loadavg } from "node:os";

/** The machine's load, since other work on it skews every wall-clock figure. */
export function loadAverage(): string {
  const [one = 0, five = 0] = loadavg();
  return `load average ${one.toFixed(2)} (1 min), ${five.toFixed(2)} (5 min)`;
}

export function heading(text: string): void {
  console.log(`\n== ${text} ${"=".repeat(Math.max(0, 88 - text.length))}`);
}

export function verdict(ok: boolean): string {
  return ok ? "met" : "MISSED";
}

/** Seconds as milliseconds with two decimals. */
export const ms = (seconds: number): string => `${(seconds * 1000).toFixed(2)} ms`;

/** The q-quantile (0..1) by linear interpolation between order statistics, as Python's
 * `statistics.quantiles(method="inclusive")` and `statistics.median` compute it. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const position = q * (sorted.length - 1);
  const low = Math.floor(position);
  const high = Math.min(low + 1, sorted.length - 1);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export const sum = (values: readonly number[]): number => values.reduce((total, v) => total + v, 0);

/** Wall seconds of an async body. */
export async function seconds(body: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await body();
  return (performance.now() - start) / 1000;
}
