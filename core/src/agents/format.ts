/**
 * Numbers as Python's `f"{x:.4f}"` and `f"{x:+.4f}"` write them, so feedback, lessons and
 * notes read the same as the Python version's.
 *
 * `toFixed` differs from Python in two places: an exact tie (a value halfway between two
 * results) goes up in JavaScript and to the even digit in Python, and negative zero loses its
 * sign. A double is an exact tie at `digits` places only if x * 2^(digits+1) is an odd integer.
 */
export function fixed(x: number, digits: number): string {
  if (!Number.isFinite(x)) return Number.isNaN(x) ? "nan" : x > 0 ? "inf" : "-inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const size = Math.abs(x);
  const doubled = size * 2 ** (digits + 1);
  if (!(Number.isInteger(doubled) && doubled % 2 === 1)) return sign + size.toFixed(digits);
  const scaled = size * 10 ** digits; // k + 0.5 exactly
  const even = Math.floor(scaled) % 2 === 0 ? Math.floor(scaled) : Math.ceil(scaled);
  const text = String(even).padStart(digits + 1, "0");
  return `${sign}${text.slice(0, text.length - digits)}${digits > 0 ? "." : ""}${text.slice(text.length - digits)}`;
}

/** With its sign always written, as `+.4f` does. */
export function signed(x: number, digits: number): string {
  const text = fixed(x, digits);
  return text.startsWith("-") ? text : `+${text}`;
}
