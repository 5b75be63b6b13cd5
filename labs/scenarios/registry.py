"""Scenario registry: name, title, what the engineer will see, and a build."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from licensing_core.models import Lab


@dataclass(frozen=True)
class Shows:
    """A string the engineer reads on a page once the scenario has loaded.

    `page` names the page (labs.pages.PAGES): e.g. "sl:esa1.example.com"
    for that appliance's Smart Software Licensing page, "portal:instances"
    for the CSSM Product Instances list, "mailbox" for the lab mailbox.
    """

    page: str
    text: str


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    description: str
    look_at: str  # the appliance the scenario is about
    shows: tuple[Shows, ...]
    build: Callable = field(repr=False)
    extra_appliances: tuple[str, ...] = ()


_REGISTRY: dict[str, Scenario] = {}


def scenario(*, name: str, title: str, look_at: str = "esa1.example.com", shows: list[tuple[str, str]]):
    """Decorator: register `build(b: Builder)` as a scenario. The docstring is
    the description of what the engineer will see."""

    def register(build: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"Scenario {name!r} is defined twice.")
        _REGISTRY[name] = Scenario(
            name=name,
            title=title,
            description=" ".join((build.__doc__ or "").split()),
            look_at=look_at,
            shows=tuple(Shows(page, text) for page, text in shows),
            build=build,
        )
        return build

    return register


def _load() -> None:
    from labs.scenarios import library  # noqa: F401  (registers on import)


def scenarios() -> list[Scenario]:
    _load()
    return list(_REGISTRY.values())


def scenario_get(name: str) -> Scenario:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(_REGISTRY)
        raise KeyError(f"There is no scenario {name!r}. Known scenarios: {known}.") from None


def scenario_build(*, lab: Lab, name: str) -> Scenario:
    """Build scenario `name` in `lab` (which must hold only the starting world)."""
    from labs.scenarios.builder import Builder

    spec = scenario_get(name)
    builder = Builder(lab)
    builder.freeze()
    spec.build(builder)
    return spec
