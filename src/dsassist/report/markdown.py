"""report.md: the question and its answer, the data, what was tried, what helped, the model."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from dsassist.controller import Loop
from dsassist.messages import StepSummary, Verdict
from dsassist.report.tree import text_tree, tree_plot


def answer_for(loop: Loop, question: str, target: str, drivers: list[dict[str, Any]]) -> str:
    """A direct answer from the evidence: the best model's score and the columns that drive it."""
    best, baseline = loop.best, _baseline(loop)
    if best is None or best.metrics is None:
        return f"No model could be validated ({loop.stop_reason}); see the steps below."
    m = best.metrics
    score = f"{m.metric} {m.mean:.4f} ± {m.std:.4f}"
    versus = (
        f" against {baseline.metrics.mean:.4f} for a dummy baseline" if baseline and baseline.metrics else ""
    )
    lines = [
        f"The best pipeline (step {best.id}, {_model(loop)}) reaches {score} in cross-validation{versus}."
    ]
    if drivers:
        lines.append(f"What drives `{target}` most, by permutation importance on held-out folds:")
        for d in drivers[:5]:
            lines.append(f"- **{d['column']}** (importance {d['importance']:.4f}): {d['effect']}")
    return "\n".join(lines)


def write_report(loop: Loop, folder: Path, meta: dict[str, Any], answer: str) -> None:
    plot = _progress_plot(loop, folder / "plots" / "progress.png")
    tree = "plots/tree.png" if tree_plot(loop.view.steps, folder / "plots" / "tree.png") else None
    question = meta["question"] or f"How well can {meta['target']!r} be predicted, and from what?"
    parts = [
        f"# DSAssist report: {meta['data_name']}",
        "",
        f"**Question.** {question}",
        "",
        "## Answer",
        "",
        answer,
        "",
        "## Data",
        "",
        _profile_section(loop.view.profile, meta),
        "",
        "## Validation",
        "",
        meta["validation_text"],
        "",
        "## What was tried",
        "",
        _steps_table(loop),
        "",
        "## The experiment tree",
        "",
        "Each step builds on the kernel state of its parent; judged steps on the best step so far.",
        "",
        "```",
        text_tree(loop.view.steps),
        "```",
        "",
        f"![experiment tree]({tree})" if tree else "",
        "",
        "## What helped",
        "",
        _helped(loop),
        "",
        "## What earlier runs taught",
        "",
        _priors_section(loop),
        "",
        "## Best pipeline",
        "",
        _best_section(loop),
        "",
        "## Plots",
        "",
        f"![score by step]({plot})" if plot else "",
        *[f"![{title}]({path})" for title, path in meta["plots"]],
        "",
        "## Model calls and cost",
        "",
        cost_section(meta["spending"], meta["budget_usd"]),
        "",
        f"Stopped: {loop.stop_reason}. Elapsed {meta['elapsed_s']:.1f}s. "
        "Per-step notes are in `steps/`, the winning path in `notebook.ipynb`.",
        "",
    ]
    (folder / "report.md").write_text("\n".join(parts))


def _priors_section(loop: Loop) -> str:
    priors = loop.view.priors
    if not priors:
        return (
            "No earlier run on similar data was in the project store: hypotheses ran in the library's order."
        )
    runs = max(p.runs for p in priors.values())
    best = sorted(priors.items(), key=lambda item: -item[1].rate)[:5]
    lines = [
        f"Earlier runs on similar data (up to {runs} of them) reordered the hypotheses: within each "
        "phase, the templates kept most often there were tried first.",
        "",
        "| template | tried | kept | mean gain |",
        "|---|---|---|---|",
    ]
    for template, p in best:
        gain = f"{p.mean_gain:+.4f}" if p.mean_gain is not None else "-"
        lines.append(f"| {template} | {p.tried} | {p.kept} | {gain} |")
    return "\n".join(lines)


COST_COLUMNS = ("role", "model", "calls", "failed", "tokens in", "tokens out", "cost (USD)")


def cost_rows(spending: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    """One row per role and model, and a total: the report and `dsassist cost` show the same."""
    rows = [
        (
            r["role"],
            r["model"],
            str(r["calls"]),
            str(r["failed"]),
            str(r["tokens_in"]),
            str(r["tokens_out"]),
            f"{r['cost_usd']:.6f}",
        )
        for r in spending
    ]
    total = [sum(r[key] for r in spending) for key in ("calls", "failed", "tokens_in", "tokens_out")]
    cost = sum(r["cost_usd"] for r in spending)
    return [*rows, ("total", "", *map(str, total), f"{cost:.6f}")]


def cost_section(spending: list[dict[str, Any]], budget_usd: float | None) -> str:
    if not spending:
        return "Offline run: no language model was called."
    lines = ["| " + " | ".join(COST_COLUMNS) + " |", "|" + "---|" * len(COST_COLUMNS)]
    lines += ["| " + " | ".join(row) + " |" for row in cost_rows(spending)]
    if budget_usd is not None:
        lines += ["", f"Budget: ${budget_usd:.2f}; every call's worst case was checked against it first."]
    return "\n".join(lines)


def _baseline(loop: Loop) -> StepSummary | None:
    return next((s for s in loop.view.steps if s.kind == "baseline" and s.metrics), None)


def _model(loop: Loop) -> str:
    from dsassist.templates.tabular.library import best_spec

    spec = best_spec(loop.view)
    params = spec.get("params") or {}
    return spec.get("model", "?") + (f" {params}" if params else "")


def _profile_section(profile: dict[str, Any], meta: dict[str, Any]) -> str:
    if not profile:
        return "The profile step did not complete."
    lines = [
        f"`{meta['data_path']}`: {profile['rows']} rows, {len(profile['columns'])} feature columns, "
        f"sha256 `{meta['sha256'][:12]}`. Task: {meta['task']}, scored by {meta['metric']}.",
        "",
        f"Target `{meta['target']}`: {_target_text(profile['target'])}",
        "",
        "| column | kind | dtype | missing | distinct |",
        "| --- | --- | --- | --- | --- |",
    ]
    for col, info in profile["columns"].items():
        lines.append(
            f"| {col} | {info['kind']} | {info['dtype']} | {info['missing']:.1%} | {info['unique']} |"
        )
    if profile["suspicious"]:
        lines += ["", "Excluded before modelling:", ""]
        lines += [f"- `{col}`: {why}" for col, why in profile["suspicious"].items()]
    return "\n".join(lines)


def _target_text(target: dict[str, Any]) -> str:
    if "classes" in target:
        total = sum(target["classes"].values())
        return ", ".join(f"{k}: {v} ({v / total:.0%})" for k, v in target["classes"].items())
    spread = f"range {target['min']:.4g} to {target['max']:.4g}"
    return f"mean {target['mean']:.4g}, std {target['std']:.4g}, {spread}, skew {target['skew']}"


def _steps_table(loop: Loop) -> str:
    lines = [
        "| step | parent | hypothesis | verdict | score | gain | time |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for s in loop.view.steps:
        score = f"{s.metrics.mean:.4f} ± {s.metrics.std:.4f}" if s.metrics else ""
        gain = f"{s.gain:+.4f}" if s.gain is not None else ""
        fixes = f" (fixed after {s.attempts - 1})" if s.attempts > 1 and s.verdict != Verdict.FAILED else ""
        parent = "" if s.parent is None else str(s.parent)
        lines.append(
            f"| {s.id} | {parent} | {s.hypothesis} | {s.verdict.value}{fixes} | {score} | {gain} "
            f"| {s.duration_s:.1f}s |"
        )
    return "\n".join(lines)


def _helped(loop: Loop) -> str:
    kept = [s for s in loop.view.steps if s.verdict == Verdict.ACCEPTED and s.gain is not None]
    if not kept:
        return "No hypothesis beat the baseline chain beyond noise."
    return "\n".join(
        f"- step {s.id}, {s.hypothesis}: {s.gain:+.4f} {s.metrics.metric}" for s in kept if s.metrics
    )


def _best_section(loop: Loop) -> str:
    best = loop.best
    if best is None or best.metrics is None:
        return "None."
    m = best.metrics
    folds = ", ".join(f"{v:.4f}" for v in m.folds)
    extra = ", ".join(f"{k} {v:.4f}" for k, v in m.secondary.items())
    return (
        f"Step {best.id}: `{_model(loop)}` with the kept feature changes.\n\n"
        f"- {m.metric}: **{m.mean:.4f} ± {m.std:.4f}** (folds: {folds})\n"
        f"- also: {extra}\n"
        f"- saved as `model.pkl`; apply it with `dsassist predict RUN_FOLDER new.csv -o predictions.csv`"
    )


def _progress_plot(loop: Loop, path: Path) -> str | None:
    """Score of every judged step, kept ones in green, with the best so far; the baseline dashed."""
    judged = [s for s in loop.view.steps if s.metrics is not None and s.kind != "baseline"]
    baseline = _baseline(loop)
    if not judged:
        return None
    path.parent.mkdir(exist_ok=True)
    best_so_far, running = [], None
    for s in judged:
        if s.verdict == Verdict.ACCEPTED:
            running = s.metrics.mean  # a step is accepted only when it beats the best so far
        best_so_far.append(running)
    fig = Figure(figsize=(8, 3.5))  # no pyplot: no global backend, no figure manager
    ax = fig.subplots()
    colors = ["tab:green" if s.verdict == Verdict.ACCEPTED else "tab:gray" for s in judged]
    ax.scatter([s.id for s in judged], [s.metrics.mean for s in judged], c=colors, zorder=3)
    ax.step([s.id for s in judged], best_so_far, where="post", color="tab:green", label="best so far")
    if baseline is not None and baseline.metrics is not None:
        ax.axhline(baseline.metrics.mean, color="tab:red", linestyle="--", label="dummy baseline")
    ax.set_xlabel("step")
    ax.set_ylabel(judged[0].metrics.metric)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return str(path.relative_to(path.parent.parent))
