"""Discrete-time (clock-mode) simulation: the papers' Euler equations, event-driven."""

from evsnn.clock.network import Dense, Network
from evsnn.clock.simulate import (
    LayerRecord,
    LayerTimeSums,
    SimulationResult,
    SpikeEvents,
    TimeSums,
    simulate,
    spike_events,
)

__all__ = [
    "Dense",
    "Network",
    "simulate",
    "SimulationResult",
    "LayerRecord",
    "LayerTimeSums",
    "TimeSums",
    "SpikeEvents",
    "spike_events",
]
