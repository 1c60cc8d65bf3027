/**
 * The port of difflib's close matches. Every expected value below was produced by Python 3.11's
 * difflib (`difflib.get_close_matches` / `SequenceMatcher(None, a, b).ratio()`), run with the
 * kernel interpreter while these tests were written.
 */
import { describe, expect, it } from "vitest";
import { closeMatches, ratio } from "../../../core/src/agents/similar.ts";

describe("closeMatches", () => {
  // [word, possibilities, n=3 cutoff=0.6, n=1 cutoff=0.6, n=3 cutoff=0]
  const cases: [string, string[], string[], string[], string[]][] = [
    [
      "trian_frame",
      ["train_frame", "threshold"],
      ["train_frame"],
      ["train_frame"],
      ["train_frame", "threshold"],
    ],
    ["threshhold", ["train_frame", "threshold"], ["threshold"], ["threshold"], ["threshold", "train_frame"]],
    ["Agee", ["Age", "Fare", "Sex"], ["Age"], ["Age"], ["Age", "Sex", "Fare"]],
    ["str", ["Age", "Fare", "Sex"], [], [], ["Fare", "Sex", "Age"]],
    ["Faer", ["Age", "Fare", "Sex"], ["Fare"], ["Fare"], ["Fare", "Sex", "Age"]],
    ["Pclass", ["fare", "pclass"], ["pclass"], ["pclass"], ["pclass", "fare"]],
    ["cabin_deck", ["age", "fare"], [], [], ["age", "fare"]],
    ["zqxv", ["train_frame", "threshold"], [], [], ["train_frame", "threshold"]],
    ["appel", ["ape", "apple", "peach", "puppy"], ["apple", "ape"], ["apple"], ["apple", "ape", "puppy"]],
    [
      "wheel",
      ["while", "whale", "wheat", "wheeled"],
      ["wheeled", "while", "wheat"],
      ["wheeled"],
      ["wheeled", "while", "wheat"],
    ],
    // equal scores: the greater string first; duplicates kept
    ["ab", ["ba", "ab", "ba"], ["ab"], ["ab"], ["ab", "ba", "ba"]],
    ["abcd", ["abce", "abcf", "abdc"], ["abdc", "abcf", "abce"], ["abdc"], ["abdc", "abcf", "abce"]],
    ["", ["", "a"], [""], [""], ["", "a"]],
    [
      "naïve_é",
      ["naive_e", "naïve_e", "naïve"],
      ["naïve_e", "naïve", "naive_e"],
      ["naïve_e"],
      ["naïve_e", "naïve", "naive_e"],
    ],
    // code points, not UTF-16 units: the emoji is one character
    ["x😀y", ["x😀z", "xy"], ["xy", "x😀z"], ["xy"], ["xy", "x😀z"]],
  ];

  it.each(cases)("%s among %j", (word, possibilities, three, one, all) => {
    expect(closeMatches(word, possibilities)).toEqual(three);
    expect(closeMatches(word, possibilities, 1, 0.6)).toEqual(one);
    expect(closeMatches(word, possibilities, 3, 0)).toEqual(all);
  });

  it("rejects a bad n or cutoff as difflib does", () => {
    expect(() => closeMatches("a", ["a"], 0)).toThrow("n must be > 0: 0");
    expect(() => closeMatches("a", ["a"], 3, 1.5)).toThrow("cutoff must be in [0.0, 1.0]: 1.5");
  });
});

describe("ratio", () => {
  it.each([
    ["abcd", "bcde", 0.75],
    ["private Thread currentThread;", "private volatile Thread currentThread;", 0.8656716417910447],
    ["qabxcd", "abycdf", 0.6666666666666666],
    ["", "", 1.0],
    ["a", "", 0.0],
    ["tide", "diet", 0.25],
    ["abxcd", "abcd", 0.8888888888888888],
  ])("%s ~ %s = %d", (a, b, expected) => {
    expect(ratio(a, b)).toBe(expected);
  });

  it("leaves out the popular characters of a sequence of 200 or more (autojunk)", () => {
    expect(ratio("aaaaaaaaaabbbbb", "ab".repeat(150))).toBe(0.006349206349206349);
    expect(ratio("abcdexyz", `xxx${"abcdefghij".repeat(25)}`)).toBe(0.007662835249042145);
  });
});
