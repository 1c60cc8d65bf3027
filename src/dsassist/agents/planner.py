"""The planner: the next minimal subtask, from the templates that apply to the run so far."""

from __future__ import annotations

from pydantic import BaseModel, Field

from dsassist.llm.parse import json_reply
from dsassist.llm.prompts import PLAN, profile_summary
from dsassist.llm.router import NoModel, Router
from dsassist.messages import Plan, PlanRequest, RunView, StepSummary, Task, Verdict
from dsassist.templates.base import Template

PHASES = (
    "setup",
    "profile",
    "guard",
    "validation",
    "baseline",
    "model",
    "feature",
    "tuning",
    "ensemble",
    "explore",
    "final",
)
MANDATORY = frozenset(PHASES[: PHASES.index("model") + 1])  # always before any exploration


class Planner:
    """Offline policy over the templates, in phase order; each (template, parameters) once.

    Once the model families are compared, each step either exploits (the next feature,
    tuning or ensemble hypothesis on the best branch) or explores (a Bayesian parameter
    sample): exploration gets `explore_share` of these steps, adapted by how often each kind
    of step has been kept. The final refit is planned early enough to fit in the budget.
    """

    def __init__(self, templates: list[Template], explore_share: float = 0.3) -> None:
        order = {kind: i for i, kind in enumerate(PHASES)}
        self.templates = sorted(templates, key=lambda t: order.get(t.kind, len(PHASES)))
        self.final = next(t for t in self.templates if t.kind == "final")
        self.explore_share = explore_share

    def handle(self, request: PlanRequest) -> Plan:
        run = request.run
        if any(s.kind == "final" for s in run.steps):
            return Plan(done=True, reason="the final model is saved")
        final = self._final(run)
        if final is not None and self._must_finish(run):
            return _beside_running(run, Plan(tasks=[final], reason="budget: time for the final refit only"))
        exploit = self._next(run, explore=False)
        explore = self._next(run, explore=True) if self.base_share(run) > 0 else None
        if exploit is not None and (
            explore is None or exploit.kind in MANDATORY or not self._explore_due(run)
        ):
            return _beside_running(run, Plan(tasks=[exploit]))
        if explore is not None:
            return _beside_running(run, Plan(tasks=[explore]))
        if run.running:
            return Plan(wait=True, reason="what comes next depends on the running steps")
        if final is not None:
            return Plan(tasks=[final], reason="every applicable hypothesis was tested")
        return Plan(done=True, reason="no step applies: an earlier set-up step failed")

    def _next(self, run: RunView, explore: bool) -> Task | None:
        tried = {(s.template_id, _key(s.params)) for s in [*run.steps, *run.running]}
        for template in ordered(self.templates, run):
            if template.kind == "final" or (template.kind == "explore") != explore:
                continue
            for params in template.applies(run):
                if (template.id, _key(params)) not in tried:
                    return template.task(params, _parent(run, template))
        return None

    def base_share(self, run: RunView) -> float:
        """The run's configured share (it travels with the run, so a planner serving many runs
        as a service needs no setting of its own), else this planner's."""
        return float(run.options.get("explore_share", self.explore_share))

    def share(self, run: RunView) -> float:
        """The exploration share, moved towards the kind of step that has been kept more often."""
        base = self.base_share(run)
        if base in (0.0, 1.0):
            return base
        explore, exploit = _arms(run)
        rate = {
            arm: (sum(s.verdict == Verdict.ACCEPTED for s in steps) + 1) / (len(steps) + 2)
            for arm, steps in (("explore", explore), ("exploit", exploit))
        }
        adapted = base * 2 * rate["explore"] / (rate["explore"] + rate["exploit"])
        return min(0.95, max(0.05, adapted))

    def _explore_due(self, run: RunView) -> bool:
        if self.base_share(run) >= 1.0:
            return True
        # counted in steps, not seconds: wall times vary, and the same seed must give the same run
        explore, exploit = (len(arm) for arm in _arms(run))
        if not explore and not exploit:
            return False  # cheap, informative exploitation first
        # the running steps count too, or parallel branches would all pick the same arm
        explore += sum(t.kind == "explore" for t in run.running)
        exploit += sum(t.kind != "explore" for t in run.running)
        return explore / (explore + exploit) < self.share(run)

    def _final(self, run: RunView) -> Task | None:
        params = self.final.applies(run)
        has_model = run.best_step is not None
        return self.final.task(params[0], run.best_step) if params and has_model else None

    @staticmethod
    def _must_finish(run: RunView) -> bool:
        if run.steps_left <= 1:
            return True
        judged = [s for s in run.steps if s.metrics is not None]
        if not judged:
            return False
        next_step = max(s.duration_s for s in judged[-3:])
        return run.time_left_s < run.refit_reserve_s() + next_step


class Subtask(BaseModel):
    hypothesis: str = Field(min_length=3, max_length=400)


class Subtasks(BaseModel):
    subtasks: list[Subtask] = Field(min_length=1)


class ModelPlanner(Planner):
    """With a model and a question: the question broken into minimal subtasks, run once the
    data is profiled and guarded, before the modelling that the offline policy plans."""

    max_subtasks = 5

    def __init__(self, templates: list[Template], router: Router, explore_share: float = 0.3) -> None:
        super().__init__(templates, explore_share)
        self.router = router
        self.pending: list[Task] | None = None  # None: the question has not been broken down yet

    def handle(self, request: PlanRequest) -> Plan:
        run = request.run
        question, open_question = run.options.get("question", ""), run.options.get("target") is None
        # the subtasks start once the data is loaded (and, with a target, profiled and guarded)
        ready_after = "setup" if open_question else "guard"
        ready = any(s.kind == ready_after and s.verdict == Verdict.DONE for s in run.steps)
        if question and ready and self.pending is None:
            analysed = [s for s in run.steps if s.kind == "analysis"]
            self.pending = _unfinished(analysed) if analysed else self._subtasks(run, question)
        if self.pending and run.running:
            return Plan(wait=True, reason="a subtask starts from every step before it")
        if self.pending:
            task = self.pending.pop(0)
            done = [s.id for s in run.steps if s.verdict == Verdict.DONE]
            reason = "the question's subtasks"
            return Plan(tasks=[task.model_copy(update={"parent": done[-1]})], reason=reason)
        if open_question and ready:
            return Plan(done=True, reason="the question's subtasks are done")
        return super().handle(request)

    def _subtasks(self, run: RunView, question: str) -> list[Task]:
        prompt = PLAN.render(
            question=question,
            target=run.options.get("target") or "(none: answer the question from the data)",
            profile=profile_summary(run) if run.profile else "(not profiled: see the load step)",
            history=run.history() or "(none yet)",
        )
        try:
            plan = self.router.ask(
                "planner", prompt, lambda text: json_reply(text, Subtasks), step_id=len(run.steps)
            )
        except NoModel:
            return []
        hypotheses = [s.hypothesis for s in plan.subtasks[: self.max_subtasks]]
        return [_subtask(h, hypotheses) for h in hypotheses]


def _subtask(hypothesis: str, plan: list[str]) -> Task:
    """An open-question subtask; it carries the whole plan, so that a resumed run can finish it."""
    return Task(
        template_id="question", kind="analysis", hypothesis=hypothesis, params={"plan": plan}, judged=False
    )


def _unfinished(analysed: list[StepSummary]) -> list[Task]:
    plan = analysed[-1].params.get("plan", [])
    done = {s.hypothesis for s in analysed}
    return [_subtask(h, plan) for h in plan if h not in done]


def _beside_running(run: RunView, plan: Plan) -> Plan:
    """A step may start while others run only if it and they are judged hypotheses on an
    established best pipeline: set-up steps, subtasks and the final refit need every step
    before them to have finished."""
    independent = all(t.judged for t in [*plan.tasks, *run.running]) and run.best_step is not None
    if not run.running or independent:
        return plan
    return Plan(wait=True, reason="the next step needs the running ones to finish")


def ordered(templates: list[Template], run: RunView) -> list[Template]:
    """Within each phase, the templates that paid off on similar data in earlier runs first;
    without that knowledge, the library's order."""
    if not run.priors:
        return templates
    phase = {kind: i for i, kind in enumerate(PHASES)}

    def key(item: tuple[int, Template]) -> tuple[int, float, int]:
        i, template = item
        prior = run.priors.get(template.id)
        return phase.get(template.kind, len(PHASES)), -(prior.rate if prior else 0.5), i

    return [t for _, t in sorted(enumerate(templates), key=key)]


def _arms(run: RunView) -> tuple[list[StepSummary], list[StepSummary]]:
    """Judged steps after the mandatory phases: (explore, exploit)."""
    later = [s for s in run.steps if s.kind not in MANDATORY and s.kind != "final"]
    return [s for s in later if s.kind == "explore"], [s for s in later if s.kind != "explore"]


def _key(params: dict) -> str:
    return repr(sorted(params.items()))


def _parent(run: RunView, template: Template) -> int | None:
    """Judged steps build on the best step; set-up steps on the step before them."""
    if template.parent is not None:
        return template.parent(run)
    if template.judged and run.best_step is not None:
        return run.best_step
    done = [s.id for s in run.steps if s.verdict == Verdict.DONE]
    return done[-1] if done else None
