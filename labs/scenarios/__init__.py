"""The scenario library: named customer states, each built through the
real services (labs.scenarios.builder) and documented with what the engineer
will see (docs/scenarios.md is generated from this registry)."""

from labs.scenarios.registry import Scenario, Shows, scenario_get, scenarios

__all__ = ["Scenario", "Shows", "scenario_get", "scenarios"]
