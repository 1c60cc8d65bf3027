/** The Python literal writer, checked against the real interpreter's ast.literal_eval. */
import { execFileSync } from "node:child_process";
import { kernelPython } from "@dsassist/sandboxes";
import { beforeAll, describe, expect, it } from "vitest";
import type { Json } from "../../../core/src/messages.ts";
import { LiteralError, paramsKey, pyLiteral } from "../../../core/src/templates/python.ts";

let python: string;
beforeAll(async () => {
  python = (await kernelPython()).python;
});

/** Each literal read back by Python: its value as JSON and its type's name. */
function literalEval(literals: string[]): { values: Json[]; types: string[] } {
  const script = `
import ast, json, sys
values = [ast.literal_eval(text) for text in json.load(sys.stdin)]
json.dump({"values": values, "types": [type(v).__name__ for v in values]}, sys.stdout)
`;
  return JSON.parse(
    execFileSync(python, ["-c", script], { input: JSON.stringify(literals), encoding: "utf8" }),
  );
}

const TRICKY: Json[] = [
  null,
  true,
  false,
  0,
  1,
  -1,
  42,
  2 ** 53,
  2 ** 53 - 1,
  1e21, // integral, but beyond 2^53: a double
  -0,
  0.1,
  1.5,
  -2.5e-7,
  1e300,
  5e-324,
  "",
  "plain",
  "it's",
  'say "hi"',
  `both ' and "`,
  "back\\slash",
  "trailing backslash\\",
  "\\'",
  "new\nline\r\n\ttab",
  "\u0000\u0001\u001f\u007f\u0085",
  "é ü 中文",
  "emoji 😀 and 𝄞",
  "lone \ud800 high",
  "\udc00 lone low",
  "\u2028 line separators \u2029",
  "\ufeffbom",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a literal that looks like a placeholder
  "$x ${x} {x} %s",
  "'''",
  '"""',
  [],
  [1, "a", null, [true, [false]]],
  {},
  { a: 1, b: { c: [1, 2.5], d: null } },
  { "it's": "k", "": 0, 'q"': "\n" },
  JSON.parse('{"__proto__": 1}'),
  { change: { params: { n_estimators: 500, learning_rate: 0.02 } }, from_steps: [5, 6, 7] },
];

describe("pyLiteral", () => {
  it("writes values that Python reads back as the same JSON", () => {
    const { values } = literalEval(TRICKY.map(pyLiteral));
    expect(values).toHaveLength(TRICKY.length);
    for (const [i, value] of TRICKY.entries()) expect(values[i], pyLiteral(value)).toStrictEqual(value);
  });

  it("writes integral numbers up to 2^53 as ints and the others as floats", () => {
    const numbers = [0, 7, -3, 2 ** 53 - 1, 2 ** 53, 1e21, 0.5, -2.5e-7, 1e300];
    const { types } = literalEval(numbers.map(pyLiteral));
    expect(types).toEqual(["int", "int", "int", "int", "float", "float", "float", "float", "float"]);
    expect(pyLiteral(10.0)).toBe("10"); // JSON cannot tell 10 from 10.0: the kernel coerces
  });

  it("reads like Python's own repr", () => {
    expect(pyLiteral({ a: [1, "b"], c: null, d: true })).toBe("{'a': [1, 'b'], 'c': None, 'd': True}");
    expect(pyLiteral("it's")).toBe(`"it's"`);
    expect(pyLiteral("a\nb")).toBe("'a\\nb'");
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY])("refuses %s", (n) => {
    expect(() => pyLiteral({ params: [n] })).toThrow(LiteralError);
    expect(() => pyLiteral(n)).toThrow(/no Python literal for .*: parameters must be finite/);
  });
});

describe("paramsKey", () => {
  it("is the same whatever the order of keys, at every depth", () => {
    const a = { change: { params: { x: 1, y: [1, { p: 1, q: 2 }] } }, model: "m" };
    const b = { model: "m", change: { params: { y: [1, { q: 2, p: 1 }], x: 1 } } };
    expect(paramsKey(a)).toBe(paramsKey(b));
  });

  it("tells different parameter sets apart", () => {
    const sets: Json[] = [
      { a: 1 },
      { a: "1" },
      { a: [1, 2] },
      { a: [2, 1] },
      { a: null },
      { a: {} },
      { b: 1 },
      {},
    ];
    const keys = sets.map(paramsKey);
    expect(new Set(keys).size).toBe(keys.length);
  });
});
