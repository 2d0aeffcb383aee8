"""Discrete-time (clock-mode) simulation: the papers' Euler equations, event-driven."""

from evsnn.clock.network import Dense, Network
from evsnn.clock.simulate import LayerRecord, SimulationResult, SpikeEvents, simulate, spike_events

__all__ = [
    "Dense",
    "Network",
    "simulate",
    "SimulationResult",
    "LayerRecord",
    "SpikeEvents",
    "spike_events",
]
