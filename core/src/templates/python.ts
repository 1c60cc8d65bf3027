/**
 * Template parameters travel as JSON and become Python literals in the cells: one writer
 * for that, and one canonical key to tell whether a parameter set was tried already.
 */
import type { Json } from "../messages.ts";

/** A value that has no Python literal (NaN, Infinity, a non-JSON value). */
export class LiteralError extends Error {
  override name = "LiteralError";
}

/**
 * The Python literal of a JSON value: None/True/False, ints for integral numbers up to
 * 2^53 (JSON cannot tell 1 from 1.0; the kernel coerces float hyper-parameters), escaped strings,
 * lists and dicts with string keys. `ast.literal_eval` reads it back to the same value.
 */
export function pyLiteral(value: Json): string {
  if (value === null) return "None";
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return pythonNumber(value);
  if (typeof value === "string") return pythonString(value);
  if (Array.isArray(value)) return `[${value.map(pyLiteral).join(", ")}]`;
  if (typeof value === "object") {
    const items = Object.entries(value).map(([k, v]) => `${pythonString(k)}: ${pyLiteral(v)}`);
    return `{${items.join(", ")}}`;
  }
  throw new LiteralError(`no Python literal for a ${typeof value}`);
}

function pythonNumber(n: number): string {
  if (!Number.isFinite(n)) throw new LiteralError(`no Python literal for ${n}: parameters must be finite`);
  if (Object.is(n, -0)) return "-0.0";
  if (Number.isSafeInteger(n)) return String(n);
  // beyond 2^53 a number is a double in JS, so a float in Python too; the shortest
  // round-trip form, which Python reads alike (1e-7, 1.5e+300), with a point if it has none
  const text = String(n);
  return /[.e]/.test(text) ? text : `${text}.0`;
}

/** Quoted as Python's repr does: single quotes unless the text holds one and no double. */
function pythonString(s: string): string {
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = quote;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    const ch = s[i] as string;
    if (code >= 0xd800 && code <= 0xdbff && isLow(s.charCodeAt(i + 1))) {
      out += ch + s[i + 1]; // a well-formed surrogate pair: one astral character, written as is
      i++;
    } else if (ch === "\\" || ch === quote) out += `\\${ch}`;
    else if (ch === "\n") out += "\\n";
    else if (ch === "\r") out += "\\r";
    else if (ch === "\t") out += "\\t";
    else if (code < 0x20 || (code >= 0x7f && code <= 0x9f)) out += `\\x${hex(code, 2)}`;
    // lone surrogates cannot be written as UTF-8, and line separators read badly in a cell
    else if ((code >= 0xd800 && code <= 0xdfff) || code === 0x2028 || code === 0x2029 || code === 0xfeff)
      out += `\\u${hex(code, 4)}`;
    else out += ch;
  }
  return out + quote;
}

const isLow = (code: number) => code >= 0xdc00 && code <= 0xdfff;
const hex = (code: number, width: number) => code.toString(16).padStart(width, "0");

/**
 * A canonical key for a parameter set: JSON with every object's keys sorted, so that two
 * sets that differ only in key order are the same experiment.
 */
export function paramsKey(value: Json): string {
  return JSON.stringify(sorted(value));
}

function sorted(value: Json): Json {
  if (Array.isArray(value)) return value.map(sorted);
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return Object.fromEntries(keys.map((k) => [k, sorted(value[k] as Json)]));
  }
  return value;
}
