/**
 * A user's mistake through the real command line: one line on stderr starting with "error:",
 * exit code 2, no stack trace, and nothing written.
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { dsassist, example, tmp } from "./cli.ts";

/** Random but fixed bytes: a PRNG (mulberry32) seeded with `seed`. */
function garbage(length: number, seed: number): Buffer {
  let a = seed;
  return Buffer.from(
    Array.from({ length }, () => {
      a = (a + 0x6d2b79f5) | 0;
      let t = Math.imul(a ^ (a >>> 15), 1 | a);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % 256;
    }),
  );
}

const PNG = Buffer.concat([Buffer.from("\x89PNG\r\n\x1a\n", "latin1"), garbage(2048, 1)]);
const PROSE =
  "It was a bright cold day in April, and the clocks were striking thirteen.\nWinston Smith slipped quickly through the glass doors.\n";

interface Case {
  /** files the case writes into its folder first */
  files?: Record<string, string | Buffer>;
  /** the command line, given the case's folder */
  args: (dir: string) => string[];
  message: RegExp;
}

/** `dsassist run DATA --target TARGET --out <dir>/out ...` */
const run =
  (data: string | ((dir: string) => string), target: string, ...rest: string[]) =>
  (dir: string) => [
    "run",
    typeof data === "string" ? data : data(dir),
    "--target",
    target,
    "--out",
    join(dir, "out"),
    ...rest,
  ];
const inDir = (name: string) => (dir: string) => join(dir, name);
const titanic = example("titanic");

const CASES: Record<string, Case> = {
  "a missing file": { args: run(inDir("nope.csv"), "y"), message: /data file not found: .*nope\.csv$/ },
  "a folder for a file": {
    files: { "looks_like.csv/": "" },
    args: run(inDir("looks_like.csv"), "y"),
    message: /not a file: .*looks_like\.csv/,
  },
  "an unsupported format": {
    files: { "data.xlsx": "a,b\n1,2\n" },
    args: run(inDir("data.xlsx"), "a"),
    message: /unsupported format '\.xlsx' .*use \.csv, \.tsv or \.parquet/,
  },
  "an empty file": {
    files: { "empty.csv": "" },
    args: run(inDir("empty.csv"), "a"),
    message: /empty\.csv is empty/,
  },
  "blank lines only": {
    files: { "blank.csv": "\n\n\n" },
    args: run(inDir("blank.csv"), "a"),
    message: /blank\.csv is empty/,
  },
  "binary garbage": {
    files: { "garbage.csv": garbage(4096, 0) },
    args: run(inDir("garbage.csv"), "a"),
    message: /garbage\.csv is not a text table/,
  },
  "an image named .csv": {
    files: { "image.csv": PNG },
    args: run(inDir("image.csv"), "a"),
    message: /image\.csv is not a text table/,
  },
  "a prose file": {
    files: { "story.csv": PROSE },
    args: run(inDir("story.csv"), "a"),
    message: /story\.csv is not a table: it reads as prose/,
  },
  "a header only": {
    files: { "header.csv": "a,b,c\n" },
    args: run(inDir("header.csv"), "a"),
    message: /header\.csv holds no rows/,
  },
  "a ragged CSV, with the parser's reason": {
    files: { "ragged.csv": "a,b\n1,2\n3,4,5,6\n7,8\n" },
    args: run(inDir("ragged.csv"), "a"),
    message: /ragged\.csv is not a readable csv table: .*line 3/,
  },
  "a corrupt Parquet file": {
    files: { "broken.parquet": "this is not parquet at all" },
    args: run(inDir("broken.parquet"), "a"),
    message: /broken\.parquet is not a readable parquet table/,
  },
  "an unknown target, with the columns": {
    args: run(titanic, "Survived"),
    message: /target column 'Survived' not in titanic\.csv \(columns: survived, pclass, sex/,
  },
  "a single-valued target": {
    files: { "one.csv": "a,b\n1,2\n1,3\n1,4\n" },
    args: run(inDir("one.csv"), "a"),
    message: /target column 'a' has a single value/,
  },
  "a target without features": {
    files: { "alone.csv": "y\n0\n1\n0\n1\n" },
    args: run(inDir("alone.csv"), "y"),
    message: /no feature columns besides the target 'y'/,
  },
  "a bad --budget": {
    args: run(titanic, "survived", "--budget", "5 minutes"),
    message: /invalid --budget: invalid duration "5 minutes"/,
  },
  "a --budget of nothing": {
    args: run(titanic, "survived", "--budget", "0s"),
    message: /invalid --budget: must be more than 0 seconds/,
  },
  "a config file that is not TOML": {
    files: { "bad.toml": "[budget\nwall = 1\n" },
    args: run(titanic, "survived", "--config", "CONFIG"),
    message: /bad\.toml is not valid TOML: /,
  },
  "a config file with an unknown key": {
    files: { "unknown.toml": '[sandbox]\ncolour = "red"\n' },
    args: run(titanic, "survived", "--config", "CONFIG"),
    message: /unknown\.toml: sandbox: Unrecognized key: "colour"/,
  },
  "a missing config file": {
    args: run(titanic, "survived", "--config", "CONFIG"),
    message: /config file not found: .*nope\.toml/,
  },
  "an unknown --group column": {
    args: run(titanic, "survived", "--group", "nope"),
    message: /group column "nope" not in titanic\.csv/,
  },
  "an unknown --time column": {
    args: run(titanic, "survived", "--time", "nope"),
    message: /time column "nope" not in titanic\.csv/,
  },
  "an unknown --keep column": {
    args: run(titanic, "survived", "--keep", "sex", "--keep", "nope"),
    message: /kept column "nope" not in titanic\.csv/,
  },
  "an unknown metric": {
    args: run(titanic, "survived", "--metric", "nope"),
    message: /unknown metric "nope": choose from roc_auc, /,
  },
  "a metric that does not fit the task": {
    args: run(titanic, "survived", "--metric", "rmse"),
    message: /metric "rmse" does not fit a binary task/,
  },
  "predict with an unknown run folder": {
    args: (dir) => ["predict", join(dir, "nope"), titanic, "-o", join(dir, "p.csv")],
    message: /no run folder at .*nope$/,
  },
  "resume of an unknown run folder": {
    args: (dir) => ["resume", join(dir, "nope")],
    message: /no run in .*nope/,
  },
};

/** Write the case's files; a name ending in "/" is a folder. `CONFIG` in the arguments names the case's .toml file. */
function prepare(dir: string, c: Case): string[] {
  for (const [name, content] of Object.entries(c.files ?? {})) {
    if (name.endsWith("/")) mkdirSync(join(dir, name));
    else writeFileSync(join(dir, name), content);
  }
  const config = Object.keys(c.files ?? {}).find((n) => n.endsWith(".toml")) ?? "nope.toml";
  return c.args(dir).map((a) => (a === "CONFIG" ? join(dir, config) : a));
}

describe("bad input", () => {
  it.concurrent.each(Object.entries(CASES))("%s: one line, exit 2, nothing written", async (_, c) => {
    const dir = tmp();
    const args = prepare(dir, c);
    const before = readdirSync(dir).sort();
    const ran = await dsassist(...args);
    const lines = ran.stderr.trim().split("\n");
    expect(lines, ran.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: /);
    expect(lines[0]).toMatch(c.message);
    expect(ran.code).toBe(2);
    expect(ran.stdout).toBe("");
    expect(readdirSync(dir).sort()).toEqual(before); // no run folder, no predictions
  });

  it("refuses an output folder that is not empty, and keeps it intact", async () => {
    const dir = tmp();
    const out = join(dir, "out");
    mkdirSync(out);
    writeFileSync(join(out, "keep.txt"), "mine");
    const ran = await dsassist("run", titanic, "--target", "survived", "--out", out);
    expect(ran.code).toBe(2);
    expect(ran.stderr.trim()).toMatch(
      /^error: output folder .*out is not empty \(use --overwrite to replace it\)$/,
    );
    expect(readdirSync(out)).toEqual(["keep.txt"]);
    expect(readFileSync(join(out, "keep.txt"), "utf8")).toBe("mine");
  });
});
