import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFileConfig, parseDuration, runConfig } from "../../core/src/config.ts";
import { UserError } from "../../core/src/errors.ts";

const base = { data: "d.csv", target: "y", out: "runs/x" };

function messageOf(call: () => unknown): string {
  try {
    call();
  } catch (error) {
    expect(error).toBeInstanceOf(UserError);
    const message = (error as Error).message;
    expect(message).not.toContain("\n");
    return message;
  }
  throw new Error("expected a UserError");
}

describe("durations", () => {
  it.each([
    ["90", 90],
    ["90s", 90],
    ["5m", 300],
    ["1h", 3600],
    ["1h30m", 5400],
    ["1.5m", 90],
    [" 2M ", 120],
  ])("%s is %d seconds", (text, seconds) => {
    expect(parseDuration(text)).toBe(seconds);
  });

  it.each(["", "soon", "5x", "5m later", "-3m"])("%j is refused with an example", (text) => {
    expect(messageOf(() => parseDuration(text))).toMatch(/invalid duration .*90s, 5m or 1h/);
  });
});

describe("run config", () => {
  it("fills the defaults", () => {
    const cfg = runConfig(base, {}, null);
    expect(cfg).toMatchObject({ budgetS: 300, maxSteps: 40, seed: 0, parallel: 1, exploreShare: 0.3 });
  });

  it("takes the budget from the file unless a flag overrides it", () => {
    expect(runConfig(base, { budget: { wall: 120 } }, null).budgetS).toBe(120);
    expect(runConfig({ ...base, budgetS: "30s" }, { budget: { wall: 120 } }, null).budgetS).toBe(30);
  });

  it("names the flag of a bad value", () => {
    expect(messageOf(() => runConfig({ ...base, budgetS: "soon" }, {}, null))).toMatch(
      /^invalid --budget: invalid duration/,
    );
    expect(messageOf(() => runConfig({ ...base, maxSteps: 0 }, {}, null))).toMatch(/^invalid --max-steps:/);
    expect(messageOf(() => runConfig({ ...base, exploreShare: 2 }, {}, null))).toMatch(
      /^invalid --explore-share:/,
    );
  });
});

describe("dsassist.toml", () => {
  const dir = mkdtempSync(join(tmpdir(), "dsassist-config-"));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };

  it("reads the budget and the sandbox", () => {
    const path = file(
      "good.toml",
      '[budget]\nwall = "2m"\n[sandbox]\nisolation = "strict"\nmemory_mb = 2048\n',
    );
    const { config } = loadFileConfig(path);
    const cfg = runConfig(base, config, path);
    expect(cfg).toMatchObject({ budgetS: 120, isolation: "strict", memoryMb: 2048, configFile: path });
  });

  it("refuses broken TOML in one line naming the file", () => {
    const path = file("broken.toml", "[budget\nwall = 3\n");
    expect(messageOf(() => loadFileConfig(path))).toMatch(/broken\.toml is not valid TOML/);
  });

  it("names the key of a bad or unknown setting", () => {
    expect(messageOf(() => loadFileConfig(file("bad.toml", '[budget]\nwall = "soon"\n')))).toMatch(
      /budget\.wall: invalid duration/,
    );
    expect(messageOf(() => loadFileConfig(file("unknown.toml", "[sandbox]\nmemroy_mb = 3\n")))).toMatch(
      /sandbox.*memroy_mb/,
    );
  });

  it("says when the file is missing", () => {
    expect(messageOf(() => loadFileConfig(join(dir, "nope.toml")))).toMatch(
      /config file not found: .*nope\.toml/,
    );
  });
});
