"""The `dsassist` command line: `run` a closed loop on a table, `resume` it, `predict` with its model."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dsassist import api
from dsassist.controller import Progress
from dsassist.errors import DSAssistError
from dsassist.report.markdown import COST_COLUMNS, cost_rows

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

VERDICT_STYLE = {"accepted": "green", "rejected": "yellow", "failed": "red", "done": "cyan"}


def _warn(message: Warning | str, *_: object, **__: object) -> None:
    console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


@app.callback()
def _setup() -> None:
    """DSAssist: many tiny, recorded experiments on a table."""
    warnings.showwarning = _warn  # one readable line per warning, not a source excerpt


def _fail(message: str) -> None:
    console.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


class LiveView:
    """One line per step as it finishes; the header waits until the inputs have been checked."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.started = False

    def __call__(self, p: Progress) -> None:
        if not self.started:
            console.print(self.title, highlight=False)
            console.print(
                " id ← par  verdict             score      best      time        left  hypothesis",
                style="dim",
            )
            self.started = True
        s = p.step
        verdict = s.verdict.value + (f" (fix x{s.attempts - 1})" if s.attempts > 1 else "")
        score = f"{s.metrics.mean:.4f}" if s.metrics else "-"
        best = f"{p.best.metrics.mean:.4f}" if p.best and p.best.metrics else "-"
        parent = "-" if s.parent is None else str(s.parent)
        style = VERDICT_STYLE.get(s.verdict.value, "white")
        console.print(
            f"{s.id:>3} ← {parent:>3}  [{style}]{verdict:<16}[/{style}] {score:>8}  best {best:>8}  "
            f"{p.elapsed_s:6.1f}s  left {max(p.time_left_s, 0):6.1f}s  {s.hypothesis}",
            highlight=False,
            soft_wrap=True,
        )


@app.command()
def run(
    data: Annotated[Path, typer.Argument(help="CSV, TSV or Parquet table")],
    out: Annotated[Path, typer.Option("--out", "-o", help="run folder to create")],
    target: Annotated[
        str | None, typer.Option("--target", "-t", help="column to predict (optional with --question)")
    ] = None,
    question: Annotated[str, typer.Option("--question", "-q")] = "",
    budget: Annotated[
        str | None, typer.Option(help="wall-time budget: 90s, 5m, 1h (default: the config's, else 5m)")
    ] = None,
    config: Annotated[
        Path | None, typer.Option(help="dsassist.toml with models and routes (default: ./dsassist.toml)")
    ] = None,
    max_steps: Annotated[int, typer.Option(help="most steps to run")] = 40,
    seed: Annotated[int, typer.Option()] = 0,
    metric: Annotated[
        str | None, typer.Option(help="roc_auc, accuracy, log_loss, rmse, mae, r2, ...")
    ] = None,
    folds: Annotated[int, typer.Option(help="cross-validation folds")] = 5,
    group: Annotated[str | None, typer.Option(help="column whose rows must share a fold")] = None,
    time_column: Annotated[
        str | None, typer.Option("--time", help="column that orders the rows in time")
    ] = None,
    templates: Annotated[Path | None, typer.Option(help="Python file with extra TEMPLATES")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace a non-empty run folder")] = False,
    explore_share: Annotated[float, typer.Option(help="share of time for Bayesian parameter sampling")] = 0.3,
    isolation: Annotated[str, typer.Option(help="auto (bubblewrap if present), strict or none")] = "auto",
    memory_mb: Annotated[int, typer.Option(help="kernel address-space limit")] = 4096,
    cpu_s: Annotated[int | None, typer.Option(help="kernel CPU-time limit")] = None,
    processes: Annotated[int, typer.Option(help="kernel process limit")] = 256,
    file_mb: Annotated[int, typer.Option(help="largest file the kernel may write")] = 1024,
    output_kb: Annotated[int, typer.Option(help="output kept per stream and cell")] = 256,
) -> None:
    """Run plan -> code -> execute -> evaluate -> reflect cycles on DATA."""
    view = LiveView(f"[bold]DSAssist[/bold] {data} → {out}  ({f'target {target!r}' if target else question})")
    try:
        result = api.run(
            data,
            target,
            out,
            question=question,
            budget=budget,
            config=config,
            on_step=view,
            max_steps=max_steps,
            seed=seed,
            metric=metric,
            folds=folds,
            group_column=group,
            time_column=time_column,
            templates_file=templates,
            overwrite=overwrite,
            explore_share=explore_share,
            isolation=isolation,
            memory_mb=memory_mb,
            cpu_s=cpu_s,
            processes=processes,
            file_mb=file_mb,
            output_kb=output_kb,
        )
    except DSAssistError as exc:
        _fail(str(exc))
        return
    _summary(result)


def _summary(result: api.RunResult) -> None:
    table = Table(show_header=False, box=None)
    if result.target is not None:
        best = f"{result.metric} {result.best_score} ± {result.best_std} (step {result.best_step})"
        table.add_row("best", best)
        table.add_row("baseline", str(result.baseline_score))
    else:
        table.add_row("answer", result.answer)
    table.add_row("steps", f"{result.steps} ({result.failed_steps} failed, {result.fixed_steps} fixed)")
    table.add_row("stopped", result.stop_reason)
    table.add_row("report", str(Path(result.run_dir) / "report.md"))
    console.print(table)
    if result.status != "finished":
        raise typer.Exit(130)


@app.command()
def resume(run_dir: Annotated[Path, typer.Argument(help="the folder of a run that was stopped")]) -> None:
    """Continue a stopped run: no completed step is lost or repeated."""
    view = LiveView(f"[bold]DSAssist[/bold] resuming {run_dir}")
    try:
        result = api.resume(run_dir, on_step=view)
    except DSAssistError as exc:
        _fail(str(exc))
        return
    _summary(result)


@app.command()
def predict(
    run_dir: Annotated[Path, typer.Argument(help="a run folder with a final model")],
    data: Annotated[Path, typer.Argument(help="new rows: CSV, TSV or Parquet")],
    output: Annotated[Path, typer.Option("--output", "-o", help="where to write predictions")],
) -> None:
    """Apply a run's final model to new rows."""
    try:
        frame = api.predict(run_dir, data, output)
    except DSAssistError as exc:
        _fail(str(exc))
        return
    console.print(f"{len(frame)} predictions written to {output}", highlight=False)


@app.command()
def cost(run_dir: Annotated[Path, typer.Argument(help="a run folder")]) -> None:
    """Spend per role and model: calls, tokens and dollars."""
    try:
        spending = api.spending(run_dir)
    except DSAssistError as exc:
        _fail(str(exc))
        return
    if not spending:
        console.print("offline run: no language model was called", highlight=False)
        return
    table = Table(*COST_COLUMNS)
    for row in cost_rows(spending):
        table.add_row(*row, style="bold" if row[0] == "total" else None)
    Console().print(table)


def main() -> None:
    app()
