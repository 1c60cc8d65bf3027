"""The four agents of the loop. Each is a class with one method: `handle(message) -> message`.

Each has an offline policy and a model-backed variant that falls back to it.
"""

from dsassist.agents.coder import Coder, ModelCoder
from dsassist.agents.evaluator import Evaluator, ModelEvaluator
from dsassist.agents.planner import ModelPlanner, Planner
from dsassist.agents.reflector import ModelReflector, Reflector

__all__ = [
    "Coder",
    "Evaluator",
    "ModelCoder",
    "ModelEvaluator",
    "ModelPlanner",
    "ModelReflector",
    "Planner",
    "Reflector",
]
