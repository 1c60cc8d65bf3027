"""Message transports between the controller and the agents."""

from dsassist.bus.inprocess import Agent, Bus, InProcessBus

__all__ = ["Agent", "Bus", "InProcessBus"]
