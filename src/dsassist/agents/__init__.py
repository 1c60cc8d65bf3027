"""The four agents of the loop. Each is a class with one method: `handle(message) -> message`."""

from dsassist.agents.coder import Coder
from dsassist.agents.evaluator import Evaluator
from dsassist.agents.planner import Planner
from dsassist.agents.reflector import Reflector

__all__ = ["Coder", "Evaluator", "Planner", "Reflector"]
