"""DABench-style accuracy of LLM mode on the shared data-analysis questions.

Each question of `../shared/data/dev/questions/questions.jsonl` runs as an open question (no
target) on its table, through whatever models the config names:

    dsassist run tables/FILE --question "QUESTION + constraints + answer format" --config C

and the run's answer is scored by the benchmark's own rule: every `@name[value]` sub-answer
in `labels.jsonl` must appear exactly in the answer. It prints accuracy per question (all
sub-answers right) and per sub-answer, by level, and the dollars spent.

With no endpoint configured (no --config and no ./dsassist.toml with an [llm] section) it says
so and exits 0: there is no model here to measure.

    python bench/dabench.py [--config dsassist.toml] [--limit 10] [--budget 2m]
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from collections import defaultdict
from pathlib import Path

from common import heading, load_average
from dsassist import api
from dsassist.errors import DSAssistError
from dsassist.llm.settings import CONFIG_FILE, load_settings

QUESTIONS = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "questions"
SUB_ANSWER = re.compile(r"@(\w+)\[([^\]]*)\]")


def load(folder: Path) -> list[dict]:
    labels = {row["id"]: row["common_answers"] for row in map(json.loads, (folder / "labels.jsonl").open())}
    questions = [json.loads(line) for line in (folder / "questions.jsonl").open()]
    return [{**q, "answers": labels[q["id"]]} for q in questions if q["id"] in labels]


def prompt(q: dict) -> str:
    return f"{q['question']}\nConstraints: {q['constraints']}\nAnswer format: {q['format']}"


def score(answer: str, expected: list[list[str]]) -> tuple[int, int]:
    """Sub-answers right, and out of how many (exact match of each @name[value])."""
    given = {name: value.strip() for name, value in SUB_ANSWER.findall(answer)}
    return sum(given.get(name) == value.strip() for name, value in expected), len(expected)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None)
    parser.add_argument("--limit", type=int, default=None, help="the first N questions only")
    parser.add_argument("--budget", default="2m", help="wall-time budget per question")
    args = parser.parse_args()
    config = args.config or (Path(CONFIG_FILE) if Path(CONFIG_FILE).is_file() else None)
    try:
        settings = load_settings(config) if config else None
    except DSAssistError as exc:
        print(f"error: {exc}")
        raise SystemExit(2) from None
    if settings is None or settings.llm is None:
        print("no LLM endpoint configured (--config, or a dsassist.toml with [llm] here): nothing to measure")
        return
    if not QUESTIONS.is_dir():
        print(f"questions not found at {QUESTIONS}: nothing to measure")
        return
    questions = load(QUESTIONS)[: args.limit]
    heading(f"{len(questions)} questions, budget {args.budget} each; {load_average()}")
    by_level: dict[str, list[tuple[int, int]]] = defaultdict(list)
    spent = 0.0
    with tempfile.TemporaryDirectory() as tmp:
        for q in questions:
            out = Path(tmp) / f"q{q['id']}"
            try:
                result = api.run(
                    QUESTIONS / "tables" / q["file_name"],
                    None,
                    out,
                    question=prompt(q),
                    budget=args.budget,
                    config=config,
                    max_steps=12,
                )
                answer = result.answer
                spent += sum(row["cost_usd"] for row in api.spending(out))
            except DSAssistError as exc:
                answer = f"(error: {exc})"
            right, total = score(answer, q["answers"])
            by_level[q["level"]].append((right, total))
            print(f"q{q['id']:<4} {q['level']:<7} {right}/{total}  {answer[:100]!r}", flush=True)
    heading("accuracy")
    rows = [*by_level.items(), ("all", [s for scores in by_level.values() for s in scores])]
    for level, scores in rows:
        whole = sum(r == t for r, t in scores)
        subs, total = sum(r for r, _ in scores), sum(t for _, t in scores)
        print(
            f"{level:<8} questions {whole}/{len(scores)} ({whole / len(scores):.1%})   "
            f"sub-answers {subs}/{total} ({subs / max(total, 1):.1%})"
        )
    print(f"spent ${spent:.4f}")


if __name__ == "__main__":
    main()
