/**
 * The live view: one line per step as it finishes (id, parent, verdict, score, best, time
 * and budget left, hypothesis); coloured on a terminal, plain lines otherwise.
 */
import type { Progress } from "./controller.ts";

const COLOUR: Record<string, string> = { accepted: "32", rejected: "33", failed: "31", done: "36" };

export function liveView(title: string, write: (line: string) => void, colour: boolean) {
  let started = false;
  const paint = (code: string, text: string) => (colour ? `\x1b[${code}m${text}\x1b[0m` : text);
  return (p: Progress): void => {
    if (!started) {
      write(title);
      write(paint("2", " id ← par  verdict             score      best      time        left  hypothesis"));
      started = true;
    }
    const s = p.step;
    const verdict = (s.verdict + (s.attempts > 1 ? ` (fix x${s.attempts - 1})` : "")).padEnd(16);
    const score = (s.metrics ? s.metrics.mean.toFixed(4) : "-").padStart(8);
    const best = (p.best?.metrics ? p.best.metrics.mean.toFixed(4) : "-").padStart(8);
    const parent = (s.parent === null ? "-" : String(s.parent)).padStart(3);
    const time = `${p.elapsedS.toFixed(1).padStart(6)}s  left ${Math.max(p.timeLeftS, 0).toFixed(1).padStart(6)}s`;
    const line = `${String(s.id).padStart(3)} ← ${parent}  ${paint(COLOUR[s.verdict] ?? "0", verdict)} ${score}  best ${best}  ${time}  ${s.hypothesis}`;
    write(line);
  };
}
