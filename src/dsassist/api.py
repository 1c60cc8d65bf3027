"""The Python entry points; the command line calls these too."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
import uuid
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ValidationError

from dsassist.agents import (
    Coder,
    Evaluator,
    ModelCoder,
    ModelEvaluator,
    ModelPlanner,
    ModelReflector,
    Planner,
    Reflector,
)
from dsassist.bus import Agent, Bus, InProcessBus
from dsassist.bus.redis import RedisBus, Worker
from dsassist.config import RunConfig
from dsassist.controller import Controller, Loop, Progress
from dsassist.data import check_target, infer_task, read_table
from dsassist.errors import DSAssistError
from dsassist.llm.prompts import clip
from dsassist.llm.providers import Client, make_client
from dsassist.llm.router import Router
from dsassist.llm.settings import CONFIG_FILE, Settings, load_settings
from dsassist.messages import Answer, AnswerRequest, Prior, RunView, StepSummary, Verdict
from dsassist.report import answer_for, write_notebook, write_report
from dsassist.sandbox import Executor, Sandbox
from dsassist.sandbox.isolation import next_kernel_uid
from dsassist.sandbox.remote import RaySandbox, connect
from dsassist.store import MirroredStore, ProvenanceStore
from dsassist.store.provenance import safe_location
from dsassist.store.queries import Lineage
from dsassist.templates import Template, load_templates
from dsassist.templates.tabular.toolkit import DEFAULT_METRIC, METRICS

STORE_ENV = "DSASSIST_STORE"
DEFAULT_STORE = ".dsassist/provenance.db"
# what the tabular cells import: pooled kernels import it while they wait
TABULAR_MODULES = ("numpy", "pandas", "sklearn.ensemble", "lightgbm", "matplotlib.pyplot")


class RunResult(BaseModel):
    """The outcome of a run, as written to `result.json`."""

    run_dir: str
    status: str  # finished, interrupted
    stop_reason: str
    task: str  # binary, multiclass, regression; analysis for a question without a target
    target: str | None
    metric: str
    higher_is_better: bool
    best_score: float | None
    best_std: float | None
    baseline_score: float | None
    best_step: int | None
    steps: int
    failed_steps: int
    fixed_steps: int
    elapsed_s: float
    validation: dict[str, Any]
    answer: str


def run(
    data: str | Path,
    target: str | None,
    out: str | Path,
    *,
    question: str = "",
    budget: str | float | None = None,
    on_step: Callable[[Progress], None] | None = None,
    config: str | Path | None = None,
    store: str | None = None,
    **options: Any,
) -> RunResult:
    """Run the closed loop on a table and write the run folder `out`.

    `config` is a dsassist.toml (default: ./dsassist.toml if present) naming the models to use;
    without one the run is offline. `budget` defaults to the file's `budget.wall`, else 5m.
    `store` is the project store every run also writes to (see `project_store`).
    `options` are the other fields of `RunConfig` (max_steps, seed, metric, folds, ...).
    """
    config_file = Path(config).resolve() if config else _default_config()
    settings = load_settings(config_file)
    budget = budget if budget is not None else settings.budget.wall or "5m"
    try:
        cfg = RunConfig(
            data=data,
            target=target,
            out=out,
            question=question,
            budget_s=budget,
            config_file=config_file,
            **options,
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        raise DSAssistError(f"invalid option {'.'.join(map(str, err['loc']))}: {err['msg']}") from None
    return _run(cfg, settings, on_step, store)


def _default_config() -> Path | None:
    path = Path(CONFIG_FILE)
    return path.resolve() if path.is_file() else None


def project_store(store: str | None = None, settings: Settings | None = None) -> str | None:
    """Where the project's store is: `store` if given, else $DSASSIST_STORE, else the config's
    `store.url`, else .dsassist/provenance.db in the working folder; "none" for no project store."""
    location = store or os.environ.get(STORE_ENV) or (settings.store.url if settings else None)
    location = location or str(Path(DEFAULT_STORE).resolve())
    return None if location == "none" else location


def _run(
    cfg: RunConfig, settings: Settings, on_step: Callable[[Progress], None] | None, store: str | None
) -> RunResult:
    dataset = read_table(cfg.data)
    if cfg.target is None:
        _check_open_question(cfg, settings)
        task, metric = "analysis", ""
    else:
        task = infer_task(check_target(dataset.frame, cfg.target, cfg.data))
        metric = cfg.metric or DEFAULT_METRIC[task]
        _check_options(cfg, dataset.frame, task, metric)
    templates = load_templates(cfg.templates_file)
    clients = _clients(settings)  # a missing key fails here, before anything is written
    _check_bus(cfg, settings)  # so does a dead Redis
    out = cfg.out.resolve()
    sandboxes = _sandboxes(cfg, out, dataset.path)  # so does a Ray cluster out of reach
    mirror = _open_project_store(project_store(store, settings))  # so does a dead server
    _prepare_folder(out, cfg.overwrite)

    run_id = uuid.uuid4().hex
    store = MirroredStore(ProvenanceStore(out / "provenance.db"), mirror)
    rows, cols = dataset.shape
    store.start_run(
        run_id,
        {**cfg.model_dump(mode="json"), "task": task, "metric": metric},
        {
            "path": str(dataset.path),
            "sha256": dataset.sha256,
            "n_rows": rows,
            "n_cols": cols,
            "format": dataset.format,
        },
    )
    loop = Loop(view=_view(cfg, task, metric, dataset.path))
    router = _router(settings, clients, store, run_id)
    return _drive(loop, cfg, templates, sandboxes, store, run_id, dataset.sha256, on_step, router)


def resume(
    run_dir: str | Path, on_step: Callable[[Progress], None] | None = None, store: str | None = None
) -> RunResult:
    """Continue a run that was stopped at any point: completed steps are kept, not repeated."""
    out = Path(run_dir).resolve()
    if not (out / "provenance.db").is_file():
        raise DSAssistError(f"no run to resume in {run_dir}: provenance.db not found")
    own = ProvenanceStore(out / "provenance.db")
    run_row, dataset_row = own.only_run()
    if run_row["status"] not in ("running", "interrupted"):  # killed, or stopped with Ctrl-C
        raise DSAssistError(f"the run in {run_dir} is already {run_row['status']}: nothing to resume")
    # the dataset's recorded path is absolute: the resume may run from another folder
    cfg = RunConfig.model_validate({**run_row["config"], "out": out, "data": dataset_row["path"]})
    dataset = read_table(cfg.data)
    if dataset.sha256 != dataset_row["sha256"]:
        raise DSAssistError(f"{cfg.data} changed since the run started (sha256 differs): start a new run")
    templates = load_templates(cfg.templates_file)
    # the run's own settings: a dsassist.toml in the folder it resumes from does not apply
    settings = load_settings(cfg.config_file) if cfg.config_file else Settings()
    mirror = _open_project_store(project_store(store, settings))
    if mirror is not None and not mirror.has_run(run_row["id"]):
        where = safe_location(mirror.location)
        warnings.warn(
            f"the project store {where} has no record of this run: not mirrored there", stacklevel=2
        )
        mirror = None
    recorder = MirroredStore(own, mirror)
    router = _router(settings, _clients(settings), recorder, run_row["id"])
    loop = Loop(view=_view(cfg, run_row["task"], run_row["metric"], dataset.path))
    for step, execution, code in own.load_steps(run_row["id"]):
        loop.add(step, execution, code)
    loop.view.priors = {k: Prior.model_validate(v) for k, v in (run_row["priors"] or {}).items()}
    sandboxes = _sandboxes(cfg, out, dataset.path)
    spent = sum(s.duration_s for s in loop.view.steps)
    return _drive(
        loop, cfg, templates, sandboxes, recorder, run_row["id"], dataset.sha256, on_step, router, spent
    )


def open_lineage(store: str | None = None) -> Lineage:
    """Lineage queries over the project store (see `project_store`), or any store given."""
    location = project_store(store, load_settings(_default_config()))
    if location is None:
        raise DSAssistError("no store to query: give --store PATH_OR_URL")
    path = location.removeprefix("sqlite:///") if location.startswith("sqlite:///") else location
    if "://" not in path and not Path(path).is_file():  # a query creates no store
        raise DSAssistError(f"no provenance store at {path}: give --store PATH_OR_URL")
    return Lineage(ProvenanceStore(location))


def _open_project_store(location: str | None) -> ProvenanceStore | None:
    return ProvenanceStore(location) if location is not None else None


def _clients(settings: Settings) -> dict[str, Client]:
    if settings.llm is None:
        return {}
    return {name: make_client(provider) for name, provider in settings.llm.providers.items()}


def _router(
    settings: Settings, clients: dict[str, Client], store: MirroredStore, run_id: str
) -> Router | None:
    """The model router, or None for an offline run; a resumed run keeps what it spent."""
    if settings.llm is None:
        return None
    secrets = tuple(p.key() for p in settings.llm.providers.values() if p.api_key_env)
    spent = sum(row["cost_usd"] for row in store.spending(run_id))
    return Router(
        settings.llm,
        settings.budget.usd,
        record=lambda call: store.record_call(run_id, call),
        spent_usd=spent,
        clients=clients,
        redact=secrets,
    )


def _view(cfg: RunConfig, task: str, metric: str, data: Path) -> RunView:
    options = {"seed": cfg.seed, "task": task, "metric": metric, "target": cfg.target, "path": str(data)}
    options |= {"question": cfg.question, "explore_share": cfg.explore_share}
    options |= {"folds": cfg.folds, "group_column": cfg.group_column, "time_column": cfg.time_column}
    return RunView(
        task=task, metric=metric, time_left_s=cfg.budget_s, steps_left=cfg.max_steps, options=options
    )


def _sandboxes(cfg: RunConfig, out: Path, data: Path) -> list[Executor]:
    """One kernel per parallel branch, here or in Ray actors. They share the run's work folder
    and kernel user, so that any of them can continue from any step's checkpoint."""
    # the kernel writes only to work/: the database and the report stay out of its reach
    options: dict[str, Any] = {
        "read_only": (data,),
        "artifacts": out / "artifacts",
        "log": out / "kernel.log",  # out of the kernel's reach: it could swap its own files for links
        "preload": TABULAR_MODULES,
        "uid": next_kernel_uid(),
        "cores": cfg.cores or _cores_per_branch(cfg),
        **cfg.sandbox_options(),
    }
    if cfg.ray_address and cfg.executor != "ray":
        raise DSAssistError("--ray-address needs --executor ray")
    if cfg.executor == "ray":
        connect(cfg.ray_address, cfg.parallel)
        return [RaySandbox(out / "work", **options) for _ in range(cfg.parallel)]
    first = Sandbox(out / "work", **options)
    return [first, *(first.sibling() for _ in range(cfg.parallel - 1))]


def _cores_per_branch(cfg: RunConfig) -> int:
    """This machine's cores shared between the branches; on a Ray cluster, one per kernel."""
    if cfg.executor == "ray" and cfg.ray_address:
        return 1
    return max(1, (os.cpu_count() or 1) // cfg.parallel)


def _drive(
    loop: Loop,
    cfg: RunConfig,
    templates: list[Template],
    sandboxes: list[Executor],
    store: MirroredStore,
    run_id: str,
    sha256: str,
    on_step: Callable[[Progress], None] | None,
    router: Router | None,
    spent_s: float = 0.0,
) -> RunResult:
    """Run the loop from wherever `loop` stands to the end, then write the run folder's results."""
    started = time.monotonic() - spent_s
    bus = RedisBus(cfg.bus) if cfg.bus else InProcessBus(agents(templates, router, cfg.explore_share))
    status = "finished"
    try:
        with contextlib.ExitStack() as kernels:
            for sandbox in sandboxes:
                sandbox.start()
                kernels.callback(sandbox.close)
            Controller(bus, sandboxes, store, run_id, cfg, on_step, spent_s).run(loop)
    except KeyboardInterrupt:
        status, loop.stop_reason = "interrupted", "interrupted by the user"
    result = _finish(
        loop, cfg, bus, cfg.out.resolve(), run_id, store, sha256, status, time.monotonic() - started
    )
    store.close()
    if isinstance(bus, RedisBus):
        bus.close()
    return result


def agents(
    templates: list[Template], router: Router | None = None, explore_share: float = 0.3
) -> dict[str, Agent]:
    """The offline policies, or the same roles backed by models (which fall back to them)."""
    if router is None:
        return {
            "planner": Planner(templates, explore_share),
            "coder": Coder(templates),
            "evaluator": Evaluator(),
            "reflector": Reflector(),
        }
    return {
        "planner": ModelPlanner(templates, router, explore_share),
        "coder": ModelCoder(templates, router),
        "evaluator": ModelEvaluator(router),
        "reflector": ModelReflector(router),
    }


def serve(role: str, bus: str, templates_file: str | Path | None = None, **worker: Any) -> None:
    """Run one agent (offline policy) as a service on a Redis bus, until interrupted."""
    by_role = agents(load_templates(Path(templates_file) if templates_file else None))
    if role not in by_role:
        raise DSAssistError(f"unknown role {role!r}: choose from {', '.join(by_role)}")
    Worker(role, by_role[role], bus, **worker).serve()


def _check_bus(cfg: RunConfig, settings: Settings) -> None:
    if cfg.bus is None:
        return
    if settings.llm is not None:
        raise DSAssistError("workers on a bus run the offline policies: drop --bus or the [llm] config")
    RedisBus(cfg.bus).close()


def _check_open_question(cfg: RunConfig, settings: Settings) -> None:
    if not cfg.question:
        raise DSAssistError("give --target (the column to predict), --question, or both")
    if settings.llm is None:
        raise DSAssistError(
            "a question without --target is answered by a language model: name one in dsassist.toml "
            "(--config), or give --target for the offline loop"
        )


def _check_options(cfg: RunConfig, frame: pd.DataFrame, task: str, metric: str) -> None:
    if metric not in METRICS:
        raise DSAssistError(f"unknown metric {metric!r}: choose from {', '.join(METRICS)}")
    if (task == "regression") != (metric in ("rmse", "mae", "r2")):
        raise DSAssistError(f"metric {metric!r} does not fit a {task} task")
    for option in ("group_column", "time_column"):
        column = getattr(cfg, option)
        if column is not None and column not in frame.columns:
            raise DSAssistError(f"{option.replace('_', ' ')} {column!r} not in {cfg.data.name}")


def _prepare_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DSAssistError(f"output folder {out} is a file")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise DSAssistError(f"output folder {out} is not empty (use --overwrite to replace it)")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def _finish(
    loop: Loop,
    cfg: RunConfig,
    bus: Bus,
    out: Path,
    run_id: str,
    store: MirroredStore,
    sha256: str,
    status: str,
    elapsed: float,
) -> RunResult:
    steps, best = loop.view.steps, loop.best
    for name in ("model.pkl", "model.json"):
        if (out / "work" / name).is_file():
            shutil.move(out / "work" / name, out / name)
    baseline = next((s for s in steps if s.kind == "baseline" and s.metrics), None)
    validation = _record_of(loop, "validation")
    drivers = _record_of(loop, "final", "drivers").get("columns", [])
    answer = answer_for(loop, cfg.question, cfg.target, drivers)
    if cfg.question:
        evidence = [_evidence(loop, s) for s in steps if s.kind in ("analysis", "final")]
        reply = bus.request(
            "evaluator", AnswerRequest(question=cfg.question, evidence=evidence, summary=answer)
        )
        assert isinstance(reply, Answer)
        answer = reply.text
    spending = store.spending(run_id)
    result = RunResult(
        run_dir=str(out),
        status=status,
        stop_reason=loop.stop_reason,
        task=loop.view.task,
        target=cfg.target,
        metric=loop.view.metric,
        higher_is_better=METRICS.get(loop.view.metric, ("", True))[1],
        best_score=best.metrics.mean if best and best.metrics else None,
        best_std=best.metrics.std if best and best.metrics else None,
        baseline_score=baseline.metrics.mean if baseline and baseline.metrics else None,
        best_step=best.id if best else None,
        steps=len(steps),
        failed_steps=sum(s.verdict == Verdict.FAILED for s in steps),
        fixed_steps=sum(s.attempts > 1 and s.verdict != Verdict.FAILED for s in steps),
        elapsed_s=round(elapsed, 2),
        validation=validation,
        answer=answer,
    )
    meta = {
        "data_name": cfg.data.name,
        "data_path": str(cfg.data),
        "sha256": sha256,
        "question": cfg.question,
        "target": cfg.target,
        "task": loop.view.task,
        "metric": loop.view.metric,
        "elapsed_s": elapsed,
        "validation_text": _validation_text(validation),
        "plots": _plots(loop),
        "spending": spending,
        "budget_usd": _budget_usd(cfg),
    }
    write_report(loop, out, meta, answer)
    title = f"predicting {cfg.target}" if cfg.target else cfg.question
    write_notebook(loop, out / "notebook.ipynb", f"{cfg.data.name}: {title}")
    (out / "result.json").write_text(result.model_dump_json(indent=2))
    store.record_artifacts(run_id, out, _artifacts(loop, out))
    store.finish_run(run_id, status, result.best_step, result.best_score, answer)
    return result


def _evidence(loop: Loop, step: StepSummary) -> str:
    """A step's line and the head and tail of what its cell printed."""
    execution = loop.executions.get(step.id)
    printed = clip(execution.stdout.strip(), 1200) if execution else ""
    return f"{step.line()}\n{printed}" if printed else step.line()


def _budget_usd(cfg: RunConfig) -> float | None:
    return load_settings(cfg.config_file).budget.usd if cfg.config_file else None


def _record_of(loop: Loop, kind: str, record: str | None = None) -> dict[str, Any]:
    step = next((s for s in loop.view.steps if s.kind == kind and s.verdict == Verdict.DONE), None)
    if step is None:
        return {}
    records = loop.executions[step.id].records(record or kind)
    return records[-1] if records else {}


def _validation_text(v: dict[str, Any]) -> str:
    if not v:
        return "No validation scheme was set up."
    column = f" on `{v['column']}`" if v.get("column") else ""
    folds = f"{v['n_splits']} folds ({v['why']})"
    return f"{v['scheme']} cross-validation{column}, {folds}; every comparison uses these folds."


def _artifacts(loop: Loop, out: Path) -> list[tuple[str, str, int | None]]:
    """(kind, path in the run folder, the step that made it) of every file a reader keeps."""
    final = next((s.id for s in loop.view.steps if s.kind == "final" and s.verdict == Verdict.DONE), None)
    made: list[tuple[str, str, int | None]] = [
        ("model", name, final) for name in ("model.pkl", "model.json") if (out / name).is_file()
    ]
    for step_id, execution in loop.executions.items():
        made += [("plot", o.path, step_id) for o in execution.outputs if o.path and (out / o.path).is_file()]
    made += [("plot", f"plots/{p.name}", None) for p in sorted((out / "plots").glob("*.png"))]
    made += [("report", "report.md", None), ("notebook", "notebook.ipynb", None)]
    return made


def _plots(loop: Loop) -> list[tuple[str, str]]:
    plots = []
    for step in loop.view.steps:
        if step.kind in ("profile", "final") and step.id in loop.executions:
            plots += [(step.kind, o.path) for o in loop.executions[step.id].outputs if o.path]
    return plots


def spending(run_dir: str | Path) -> list[dict[str, Any]]:
    """Calls, tokens and dollars per role and model of the run in `run_dir`."""
    path = Path(run_dir) / "provenance.db"
    if not path.is_file():
        raise DSAssistError(f"no run in {run_dir}: provenance.db not found")
    store = ProvenanceStore(path)
    try:
        return store.spending(store.only_run()[0]["id"])
    finally:
        store.close()


def predict(run_dir: str | Path, data: str | Path, out: str | Path | None = None) -> pd.DataFrame:
    """Apply a run's final model to new rows; the input's rows and order are kept."""
    run_dir = Path(run_dir)
    model_path, meta_path = run_dir / "model.pkl", run_dir / "model.json"
    if not model_path.is_file() or not meta_path.is_file():
        raise DSAssistError(f"no final model in {run_dir}: the run did not reach its final refit")
    meta = json.loads(meta_path.read_text())
    frame = read_table(Path(data)).frame
    missing = [c for c in meta["features"] if c not in frame.columns]
    if missing:
        raise DSAssistError(f"{Path(data).name} lacks columns the model needs: {', '.join(missing)}")
    predictions = _predict_in_sandbox(model_path, frame[meta["features"]], meta["task"] != "regression")
    result = pd.concat([frame.reset_index(drop=True), predictions], axis=1)
    if out is not None:
        _write_table(result, Path(out))
    return result


PREDICT_CELL = """
import cloudpickle, pandas as pd
with open({model!r}, "rb") as f:
    model = cloudpickle.load(f)
X = pd.read_parquet({features!r})
out = pd.DataFrame({{"prediction": model.predict(X)}})
if {classify!r}:
    proba = model.predict_proba(X)
    for i, label in enumerate(model.classes_):
        out[f"proba_{{label}}"] = proba[:, i]
out.to_parquet("predictions.parquet")
"""


def _predict_in_sandbox(model: Path, features: pd.DataFrame, classify: bool) -> pd.DataFrame:
    """Unpickle and apply the model inside a sandbox: it was written by untrusted code.

    Only a Parquet table of predictions comes back.
    """
    with tempfile.TemporaryDirectory(prefix="dsassist-predict-") as tmp:
        table = Path(tmp) / "features.parquet"
        features.to_parquet(table, index=False)
        with Sandbox(Path(tmp) / "work", read_only=(model.resolve(), table), pool=0) as sandbox:
            code = PREDICT_CELL.format(model=str(model.resolve()), features=str(table), classify=classify)
            result = sandbox.execute(code, timeout=3600)
            if not result.ok:
                raise DSAssistError(f"the model failed to predict: {result.error.name}: {result.error.value}")
            return pd.read_parquet(Path(tmp) / "work" / "predictions.parquet")


def _write_table(frame: pd.DataFrame, path: Path) -> None:
    """Write next to the destination first, so a failure leaves no half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    if path.suffix.lower() in (".parquet", ".pq"):
        frame.to_parquet(tmp, index=False)
    else:
        frame.to_csv(tmp, index=False)
    tmp.replace(path)
