/**
 * Close matches, as Python's `difflib.get_close_matches` finds them: the coder's repairs
 * (a misspelt variable, a misspelt column) must pick the same name the Python version did.
 *
 * A port of `SequenceMatcher.ratio` with no junk function (the only way the Python coder
 * used it), including its "autojunk" rule for sequences of 200 items or more. Strings are
 * compared as sequences of code points, as Python compares them.
 */

/** Similarity of `a` and `b` in [0, 1]: twice the matched characters over the total length. */
export function ratio(a: string, b: string): number {
  return new Matcher(b).ratio(Array.from(a));
}

/**
 * Up to `n` of `possibilities` whose ratio with `word` is at least `cutoff`, best first; equal
 * scores put the greater string first (Python sorts (score, string) pairs).
 */
export function closeMatches(word: string, possibilities: Iterable<string>, n = 3, cutoff = 0.6): string[] {
  if (!(n > 0)) throw new RangeError(`n must be > 0: ${n}`);
  if (!(cutoff >= 0 && cutoff <= 1)) throw new RangeError(`cutoff must be in [0.0, 1.0]: ${cutoff}`);
  const matcher = new Matcher(word);
  const scored: { score: number; text: string }[] = [];
  for (const text of possibilities) {
    const score = matcher.ratioAbove(Array.from(text), cutoff);
    if (score !== null) scored.push({ score, text });
  }
  scored.sort((x, y) => y.score - x.score || byCodePoint(y.text, x.text));
  return scored.slice(0, n).map((s) => s.text);
}

/** Python's string order (by code point), which differs from UTF-16 order above U+FFFF. */
function byCodePoint(x: string, y: string): number {
  const a = Array.from(x, (c) => c.codePointAt(0)!);
  const b = Array.from(y, (c) => c.codePointAt(0)!);
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i]! - b[i]!;
  }
  return a.length - b.length;
}

/** `SequenceMatcher` with a fixed second sequence `b`, indexed once and matched against many `a`. */
class Matcher {
  private readonly b: string[];
  /** character of b -> its positions in b, ascending (popular characters left out) */
  private readonly b2j = new Map<string, number[]>();
  /** count of each character of b, for the quick upper bound */
  private readonly counts = new Map<string, number>();

  constructor(word: string) {
    this.b = Array.from(word);
    this.b.forEach((c, j) => {
      const positions = this.b2j.get(c);
      if (positions) positions.push(j);
      else this.b2j.set(c, [j]);
      this.counts.set(c, (this.counts.get(c) ?? 0) + 1);
    });
    // autojunk: in a long b, a character making up more than 1% of it is not matched on
    const n = this.b.length;
    if (n >= 200) {
      const most = Math.floor(n / 100) + 1;
      for (const [c, positions] of this.b2j) if (positions.length > most) this.b2j.delete(c);
    }
  }

  ratio(a: string[]): number {
    return score(this.matched(a), a.length + this.b.length);
  }

  /** The ratio if it reaches `cutoff`, tried after the two cheap upper bounds difflib checks first. */
  ratioAbove(a: string[], cutoff: number): number | null {
    const total = a.length + this.b.length;
    if (score(Math.min(a.length, this.b.length), total) < cutoff) return null;
    if (score(this.common(a), total) < cutoff) return null;
    const r = this.ratio(a);
    return r >= cutoff ? r : null;
  }

  /** Characters a and b share, counted with multiplicity (difflib's quick_ratio). */
  private common(a: string[]): number {
    const left = new Map(this.counts);
    let shared = 0;
    for (const c of a) {
      const k = left.get(c) ?? 0;
      if (k > 0) shared++;
      left.set(c, k - 1);
    }
    return shared;
  }

  /** Total size of the matching blocks: the longest match, then recursively left and right of it. */
  private matched(a: string[]): number {
    const queue: [number, number, number, number][] = [[0, a.length, 0, this.b.length]];
    let total = 0;
    for (let next = queue.pop(); next; next = queue.pop()) {
      const [alo, ahi, blo, bhi] = next;
      const [i, j, k] = this.longestMatch(a, alo, ahi, blo, bhi);
      if (k === 0) continue;
      total += k;
      if (alo < i && blo < j) queue.push([alo, i, blo, j]);
      if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
    }
    return total;
  }

  /**
   * The longest block a[i:i+k] == b[j:j+k] in the given ranges, earliest in a, then in b;
   * then extended over equal characters that autojunk left out of the index. (difflib's two
   * further loops extend over junk, and there is no junk without a junk function.)
   */
  private longestMatch(a: string[], alo: number, ahi: number, blo: number, bhi: number) {
    const b = this.b;
    let [besti, bestj, best] = [alo, blo, 0];
    let runs = new Map<number, number>();
    for (let i = alo; i < ahi; i++) {
      const next = new Map<number, number>();
      for (const j of this.b2j.get(a[i]!) ?? []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (runs.get(j - 1) ?? 0) + 1;
        next.set(j, k);
        if (k > best) [besti, bestj, best] = [i - k + 1, j - k + 1, k];
      }
      runs = next;
    }
    while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1])
      [besti, bestj, best] = [besti - 1, bestj - 1, best + 1];
    while (besti + best < ahi && bestj + best < bhi && a[besti + best] === b[bestj + best]) best++;
    return [besti, bestj, best] as const;
  }
}

function score(matches: number, total: number): number {
  return total > 0 ? (2 * matches) / total : 1;
}
