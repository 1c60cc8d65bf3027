"""The planner: the next minimal subtask, from the templates that apply to the run so far."""

from __future__ import annotations

from dsassist.messages import Plan, PlanRequest, RunView, Task, Verdict
from dsassist.templates.base import Template

PHASES = ("setup", "profile", "guard", "validation", "baseline", "model", "feature", "tuning", "final")


class Planner:
    """Offline policy: templates in phase order; each (template, parameters) tried once.

    The final refit is planned early enough to fit in the budget: when the time left would
    not cover the next step plus the refit, or when one step is left.
    """

    def __init__(self, templates: list[Template]) -> None:
        order = {kind: i for i, kind in enumerate(PHASES)}
        self.templates = sorted(templates, key=lambda t: order.get(t.kind, len(PHASES)))
        self.final = next(t for t in self.templates if t.kind == "final")

    def handle(self, request: PlanRequest) -> Plan:
        run = request.run
        if any(s.kind == "final" for s in run.steps):
            return Plan(done=True, reason="the final model is saved")
        final = self._final(run)
        if final is not None and self._must_finish(run):
            return Plan(tasks=[final], reason="budget: time for the final refit only")
        tried = {(s.template_id, _key(s.params)) for s in run.steps}
        for template in self.templates:
            if template.kind == "final":
                continue
            for params in template.applies(run):
                if (template.id, _key(params)) not in tried:
                    return Plan(tasks=[template.task(params, _parent(run, template))])
        if final is not None:
            return Plan(tasks=[final], reason="every applicable hypothesis was tested")
        return Plan(done=True, reason="no step applies: an earlier set-up step failed")

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
        best = next((s for s in run.steps if s.id == run.best_step), judged[-1])
        # the refit fits once and explains on two folds: about one cross-validation's cost
        reserve = 1.5 * best.duration_s + 5.0
        next_step = max(s.duration_s for s in judged[-3:])
        return run.time_left_s < reserve + next_step


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
