"""The `dsassist` command line: `run` a closed loop on a table, `resume` it, `predict` with its model."""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from dsassist import api
from dsassist.controller import Progress
from dsassist.errors import DSAssistError
from dsassist.report.markdown import COST_COLUMNS, cost_rows
from dsassist.store.graph import cypher, sync_falkordb
from dsassist.store.queries import Lineage

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
console = Console(stderr=True)

STORE_HELP = (
    "project store every run also writes to: a SQLite path or postgresql://... "
    "(default: $DSASSIST_STORE, the config's store.url, else .dsassist/provenance.db; none: no store)"
)
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
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
    bus: Annotated[
        str | None,
        typer.Option(help="redis://host:6379/0: agents served by `dsassist worker` (default: in process)"),
    ] = None,
    executor: Annotated[str, typer.Option(help="where kernels run: local, or ray (Ray actors)")] = "local",
    ray_address: Annotated[
        str | None, typer.Option(help="auto or ray://host:10001 (default: start Ray here)")
    ] = None,
    parallel: Annotated[int, typer.Option(help="branches of the experiment tree run at once")] = 1,
    cores: Annotated[
        int | None, typer.Option(help="cores per kernel (default: this machine's / --parallel)")
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
            store=store,
            bus=bus,
            executor=executor,
            ray_address=ray_address,
            parallel=parallel,
            cores=cores,
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
def resume(
    run_dir: Annotated[Path, typer.Argument(help="the folder of a run that was stopped")],
    store: Annotated[str | None, typer.Option(help=STORE_HELP)] = None,
) -> None:
    """Continue a stopped run: no completed step is lost or repeated."""
    view = LiveView(f"[bold]DSAssist[/bold] resuming {run_dir}")
    try:
        result = api.resume(run_dir, on_step=view, store=store)
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


@app.command()
def worker(
    role: Annotated[str, typer.Option(help="planner, coder, evaluator or reflector")],
    bus: Annotated[str, typer.Option(help="redis://host:6379/0")],
    templates: Annotated[Path | None, typer.Option(help="Python file with extra TEMPLATES")] = None,
    claim_after: Annotated[
        float, typer.Option(help="seconds before a crashed worker's request is taken over")
    ] = 30,
    max_deliveries: Annotated[int, typer.Option(help="deliveries before a request is dead-lettered")] = 3,
) -> None:
    """Serve one agent on a Redis Streams bus until interrupted."""
    console.print(f"[bold]DSAssist[/bold] {role} worker on {bus.split('@')[-1]}", highlight=False)
    try:
        api.serve(role, bus, templates, claim_after_s=claim_after, max_deliveries=max_deliveries)
    except DSAssistError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        console.print("stopped", highlight=False)


query_app = typer.Typer(no_args_is_help=True, help="Ask the provenance store what worked.")
app.add_typer(query_app, name="query")
StoreOption = Annotated[str | None, typer.Option("--store", help=STORE_HELP)]
JsonOption = Annotated[bool, typer.Option("--json", help="rows as JSON, for scripts")]


def _show(rows: list[dict], as_json: bool, title: str = "") -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=1, default=str))
        return
    if not rows:
        console.print(f"{title}: nothing found" if title else "nothing found", highlight=False)
        return
    table = Table(title=title or None)
    for name in rows[0]:
        table.add_column(name, overflow="fold")  # narrow terminals wrap values instead of cutting them
    for row in rows:
        table.add_row(*(_cell(v) for v in row.values()))
    Console().print(table)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    text = "" if value is None else str(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _query(ask: Callable[[Lineage], list[dict]], as_json: bool, store: str | None, title: str = "") -> None:
    try:
        lineage = api.open_lineage(store)
        try:
            rows = ask(lineage)
        finally:
            lineage.store.close()
    except DSAssistError as exc:
        _fail(str(exc))
        return
    _show(rows, as_json, title)


@query_app.command()
def improved(
    metric: Annotated[str, typer.Option(help="roc_auc, accuracy, rmse, ...")],
    min_gain: Annotated[float, typer.Option(help="least gain over the parent step, in the metric's units")],
    kind: Annotated[
        str | None, typer.Option(help="feature (or feature_engineering), model, tuning, ...")
    ] = None,
    run: Annotated[str | None, typer.Option(help="one run (an id prefix)")] = None,
    limit: Annotated[int, typer.Option()] = 100,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Kept steps that improved METRIC by at least MIN_GAIN, best first."""
    _query(lambda q: q.improved(metric, min_gain, kind, run, limit), as_json, store)


@query_app.command("sql")
def sql_query(
    query: Annotated[str, typer.Argument(help="any SQL; the connection cannot write")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Read-only SQL over the store (runs, datasets, steps, executions, fixes, lessons, llm_calls)."""
    _query(lambda q: q.sql(query), as_json, store)


@app.command("lineage")
def lineage_command(
    step: Annotated[str, typer.Argument(help="RUN:STEP, RUN an id prefix")],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """The chain of steps and code that led to a step, with each step's gain."""
    run, _, number = step.rpartition(":")
    if not run or not number.isdigit():
        _fail(f"{step!r} is not RUN:STEP (for example 3f9a:12)")
    _query(lambda q: q.lineage(run, int(number)), as_json, store)


@app.command()
def history(
    dataset: Annotated[str | None, typer.Option(help="a path, file name or sha256 prefix")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date, e.g. 2026-11-23")] = None,
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Runs, newest first: best scores and what won."""
    _query(lambda q: q.history(dataset, since), as_json, store)


@app.command()
def compare(
    run_a: Annotated[str, typer.Argument()],
    run_b: Annotated[str, typer.Argument()],
    store: StoreOption = None,
    as_json: JsonOption = False,
) -> None:
    """Two runs side by side: each template's tries, kept steps and best gain."""
    _query(lambda q: [q.summary(run_a), q.summary(run_b)], as_json, store, "runs")
    _query(lambda q: q.compare(run_a, run_b), as_json, store, "templates (a = first run, b = second)")


@app.command()
def export(
    format: Annotated[
        str, typer.Option("--format", help="cypher (a file) or falkordb (a server)")
    ] = "cypher",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="file for cypher (default: stdout)")
    ] = None,
    url: Annotated[str | None, typer.Option(help="FalkorDB server, redis://host:port")] = None,
    graph: Annotated[str, typer.Option(help="FalkorDB graph name")] = "dsassist",
    run: Annotated[list[str] | None, typer.Option(help="only these runs (id prefixes)")] = None,
    store: StoreOption = None,
) -> None:
    """The lineage as a graph: Cypher MERGE statements (Neo4j, Memgraph, FalkorDB), or pushed to FalkorDB."""
    try:
        lineage = api.open_lineage(store)
    except DSAssistError as exc:
        _fail(str(exc))
        return
    try:
        runs = [lineage.run_id(r) for r in run] if run else None
        if format == "falkordb":
            if url is None:
                _fail("--format falkordb needs --url redis://host:port")
            count = sync_falkordb(lineage.store, url, graph, runs)
            console.print(f"{count} statements run on {graph!r}", highlight=False)
        elif format == "cypher":
            text = "\n".join(cypher(lineage.store, runs)) + "\n"
            if output is None:
                typer.echo(text, nl=False)
            else:
                output.write_text(text)
        else:
            _fail(f"unknown format {format!r}: cypher or falkordb")
    except DSAssistError as exc:
        _fail(str(exc))
    finally:
        lineage.store.close()


def main() -> None:
    app()
