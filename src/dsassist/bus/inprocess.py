"""The default transport: agents in the controller's process."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel


class Agent(Protocol):
    def handle(self, message: BaseModel) -> BaseModel: ...


class Bus(Protocol):
    def request(self, role: str, message: BaseModel) -> BaseModel: ...


class InProcessBus:
    """Calls the agent for a role directly.

    Messages make a JSON round trip on the way in and out, as they would on any other
    transport, so an agent that relies on shared objects fails here first.
    """

    def __init__(self, agents: dict[str, Agent]) -> None:
        self.agents = agents

    def request(self, role: str, message: BaseModel) -> BaseModel:
        agent = self.agents.get(role)
        if agent is None:
            raise KeyError(f"no agent serves the role {role!r}")
        reply = agent.handle(_through_json(message))
        return _through_json(reply)


def _through_json(message: BaseModel) -> BaseModel:
    return type(message).model_validate_json(message.model_dump_json())
