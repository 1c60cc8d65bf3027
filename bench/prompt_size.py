"""Prompt size per role on a narrow and a wide table: does every prompt stay under 6,000 tokens?

For each table the offline set-up cells (load, profile, guard) run in a real sandbox; then the
prompt each role would send for one step is built from the live kernel state, the profile and
the step history, exactly as in LLM mode: the planner's (the question), the coder's (an open
subtask), the fixer's (a real KeyError traceback), the evaluator's (a long describe() output),
the final answer's and the reflector's.

Tokens are estimated as UTF-8 bytes / 4 (no tokenizer can be downloaded here); the router's
budget check uses the bytes themselves, an upper bound.

The suite has no 500-column table: the wide one is spambase (57 columns) widened to 500 with
noisy copies of its columns.

    python bench/prompt_size.py
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from common import heading, verdict
from dsassist.agents import Coder
from dsassist.llm import prompts
from dsassist.messages import CodeRequest, RunView, StepSummary, Task, Verdict
from dsassist.sandbox import Sandbox
from dsassist.templates import load_templates

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "dev" / "tabular"
TARGET_TOKENS = 6000
QUESTION = "Which features drive the target, and how strongly?"


def wide_table(folder: Path) -> Path:
    frame = pd.read_csv(SHARED / "spambase.csv")
    rng = np.random.default_rng(0)
    features = [c for c in frame.columns if c != "target"]
    extra = {}
    for i in range(500 - len(features)):
        source = features[i % len(features)]
        extra[f"{source}_noisy_{i}"] = frame[source] + rng.normal(0, 0.01, len(frame))
    path = folder / "spambase_wide.csv"
    pd.concat([frame, pd.DataFrame(extra)], axis=1).to_csv(path, index=False)
    return path


def set_up(sandbox: Sandbox, path: Path, target: str, task: str, metric: str) -> RunView:
    """Run the offline set-up cells; return the run as the planner would see it."""
    coder = Coder(load_templates())
    params = {"path": str(path), "target": target, "task": task, "metric": metric, "seed": 0}
    view = RunView(task=task, metric=metric, time_left_s=60, steps_left=30, options={"question": QUESTION})
    for i, (template, kind, hypothesis) in enumerate(
        [
            ("setup", "setup", "Load the table"),
            ("profile", "profile", "Profile the columns"),
            ("guard", "guard", "Exclude suspicious columns"),
        ]
    ):
        task_ = Task(template_id=template, kind=kind, hypothesis=hypothesis, params=params if i == 0 else {})
        cell = coder.handle(CodeRequest(task=task_, state=sandbox.state()))
        result = sandbox.execute(cell.code, timeout=300)
        assert result.ok, result.error
        if kind == "profile":
            view.profile = result.records("profile")[-1]
        view.steps.append(
            StepSummary(
                id=i,
                parent=i - 1 if i else None,
                template_id=template,
                kind=kind,
                hypothesis=hypothesis,
                verdict=Verdict.DONE,
                lesson=f"{template} done",
            )
        )
    return view


def role_prompts(sandbox: Sandbox, view: RunView) -> dict[str, prompts.Prompt]:
    state = sandbox.state()
    summary = prompts.state_summary(state)
    failed = sandbox.execute("df['no_such_column'].mean()")
    described = sandbox.execute("print(df.describe().T.to_string())")
    code = "print(df.describe().T.to_string())"
    return {
        "planner": prompts.PLAN.render(
            question=QUESTION, target="target", profile=prompts.profile_summary(view), history=view.history()
        ),
        "coder": prompts.WRITE_CELL.render(
            hypothesis="Correlation of each feature with the target",
            skeleton="",
            state=summary,
            history=view.history(),
        ),
        "fixer": prompts.FIX_CELL.render(
            hypothesis="Mean of a column",
            code="df['no_such_column'].mean()",
            feedback=f"{failed.error.name}: {failed.error.value}",
            traceback=prompts.clip("\n".join(failed.error.traceback), 2000),
            state=summary,
        ),
        "evaluator": prompts.JUDGE.render(
            hypothesis="Summary statistics of every column",
            code=code,
            output=prompts.clip(described.stdout, 3000),
        ),
        "evaluator (answer)": prompts.ANSWER.render(
            question=QUESTION, evidence="\n".join(s.line() for s in view.steps), summary="(offline answer)"
        ),
        "reflector": prompts.REFLECT.render(
            step=3,
            hypothesis="Summary statistics of every column",
            verdict="done",
            outcome=prompts.clip(described.stdout, 1500),
        ),
    }


def tokens(prompt: prompts.Prompt) -> int:
    return len((prompt.system + prompt.user).encode()) // 4


def main() -> None:
    if not SHARED.is_dir():
        print(f"shared data not found at {SHARED}: nothing to measure")
        return
    with tempfile.TemporaryDirectory() as tmp:
        tables = {
            "narrow: mpg (9 columns)": (SHARED / "mpg.csv", "mpg", "regression", "rmse"),
            "wide: spambase widened (500 columns)": (wide_table(Path(tmp)), "target", "binary", "roc_auc"),
        }
        worst = 0
        for name, (path, target, task, metric) in tables.items():
            heading(name)
            with Sandbox(Path(tmp) / f"work-{target}", read_only=(path,), pool=0) as sandbox:
                view = set_up(sandbox, path, target, task, metric)
                built = role_prompts(sandbox, view)
                df_line = next(
                    line
                    for line in prompts.state_summary(sandbox.state()).splitlines()
                    if line.startswith("df:")
                )
            print(f"{'role':<20} {'prompt tokens (est.)':>22} {'bytes':>8}")
            for role, prompt in built.items():
                size = tokens(prompt)
                worst = max(worst, size) if "wide" in name else worst
                print(f"{role:<20} {size:>22,} {len((prompt.system + prompt.user).encode()):>8,}")
            print(
                f"the kernel's df in the state summary: {df_line[:160]}{'...' if len(df_line) > 160 else ''}"
            )
        heading("target")
        print(
            f"largest prompt on the wide table: {worst:,} tokens (target <= {TARGET_TOKENS:,}: "
            f"{verdict(worst <= TARGET_TOKENS)})"
        )


if __name__ == "__main__":
    main()
