"""The contract of a generator, declared as ``typing.Protocol`` classes instead of ``hasattr`` probes.

A *generator* makes the agents of a market for one episode (every array in kW, $/kWh^2, $/kWh as in
``p2penv.market.prosumer.Fleet``):

* ``FleetGenerator`` (required): ``gen(n, horizon, dt_h, start_hour, rng) -> Fleet`` of one market
  (arrays ``(T, N)`` / ``(N,)``), every random number drawn from ``rng`` (a ``numpy.random.Generator``).
* ``BatchGenerator`` (optional, faster): ``gen.batch(n, horizon, dt_h, start_hour, rngs) -> Fleet`` of
  E = ``len(rngs)`` markets at once (arrays ``(E, T, N)`` / ``(E, N)``), market e drawn from ``rngs[e]``
  exactly as ``gen(..., rngs[e])`` would draw it.
* ``PricedGenerator`` (optional): ``gen.prices(horizon, dt_h, start_hour) -> PriceSeries``: time-varying
  retail and feed-in tariffs ($/kWh per step) instead of the config's flat ones.
* attributes (optional): ``has_storage`` (bool, default False: batteries and the 3-dim action),
  ``soc_end`` (None or ``"start"``, see ``p2penv.market.storage``) and ``batch_draws_in_order`` (bool,
  default False): ``batch`` draws all of market e's numbers from ``rngs[e]`` before market e + 1's, so a list
  that repeats one generator K times yields K successive episodes exactly as K calls would. The envs then
  draw several episodes of a market in one ``batch`` call (``draws_in_order``).

The protocols are ``runtime_checkable``: ``isinstance(gen, BatchGenerator)`` is the declared form of the
old ``hasattr(gen, "batch")`` probe. ``check_generator`` runs when an env is built and names what is missing;
``draw_fleets`` and ``tariff_series`` are the two calls an env makes at every reset.

``FleetGenerator`` was named ``ScenarioGenerator`` before issue 19 ("scenario" now means a registered id only,
docs/glossary.md); the old name remains as an alias deprecated since 0.1.0 (a ``DeprecationWarning`` on use).
"""
from __future__ import annotations

from typing import Any, Protocol, Sequence, runtime_checkable

import numpy as np

from ..aliases import deprecated_aliases
from ..market.prices import PriceSeries
from ..market.prosumer import Fleet

__all__ = ["BatchGenerator", "FleetGenerator", "PricedGenerator", "check_generator", "draw_fleets",
           "draws_in_order", "tariff_series"]

# The names before issue 19 (deprecated aliases, docs/glossary.md): old name -> new name.
_RENAMED = {
    "ScenarioGenerator": "FleetGenerator",
}
__getattr__ = deprecated_aliases(__name__, _RENAMED, globals())


@runtime_checkable
class FleetGenerator(Protocol):
    """``(n, horizon, dt_h, start_hour, rng) -> Fleet`` of one market (see the module docstring)."""

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        ...


@runtime_checkable
class BatchGenerator(Protocol):
    """A generator that draws E markets in one call; market e from ``rngs[e]`` as ``gen(..., rngs[e])``."""

    def __call__(self, n: int, horizon: int, dt_h: float, start_hour: float, rng: np.random.Generator) -> Fleet:
        ...

    def batch(self, n: int, horizon: int, dt_h: float, start_hour: float,
              rngs: Sequence[np.random.Generator]) -> Fleet:
        ...


@runtime_checkable
class PricedGenerator(Protocol):
    """A generator with time-varying tariffs: ``prices(horizon, dt_h, start_hour) -> PriceSeries`` ($/kWh)."""

    def prices(self, horizon: int, dt_h: float, start_hour: float) -> PriceSeries:
        ...


def check_generator(gen: Any) -> None:
    """ValueError unless ``gen`` meets ``FleetGenerator`` (a callable), and its optional parts are well-formed."""
    if not isinstance(gen, FleetGenerator):
        raise ValueError(f"generator: expected a callable (n, horizon, dt_h, start_hour, rng) -> Fleet "
                         f"(p2penv.generators.protocol.FleetGenerator), got {type(gen).__name__}")
    for name in ("batch", "prices"):
        part = getattr(gen, name, None)
        if part is not None and not callable(part):
            raise ValueError(f"generator: {type(gen).__name__}.{name} must be a method "
                             f"(p2penv.generators.protocol), got {type(part).__name__}")
    if not isinstance(getattr(gen, "has_storage", False), (bool, np.bool_)):
        raise ValueError(f"generator: has_storage must be a bool, got {getattr(gen, 'has_storage')!r}")


def draw_fleets(gen: FleetGenerator, n: int, horizon: int, dt_h: float, start_hour: float,
                rngs: Sequence[np.random.Generator], batched: bool | None = None) -> Fleet:
    """The fleets of E = ``len(rngs)`` markets as one batched ``Fleet`` (arrays ``(E, T, N)`` / ``(E, N)``):
    one ``batch`` call for a ``BatchGenerator``, else one call per market, stacked. ``batched``: the result of
    ``isinstance(gen, BatchGenerator)`` if the caller has it (the runtime protocol check costs ~20 us)."""
    if isinstance(gen, BatchGenerator) if batched is None else batched:
        return gen.batch(n, horizon, dt_h, start_hour, rngs)
    return Fleet.stack([gen(n, horizon, dt_h, start_hour, r) for r in rngs])


def draws_in_order(gen: Any) -> bool:
    """True when ``gen`` is a ``BatchGenerator`` whose ``batch`` draws each market's numbers all at once and in
    list order (its ``batch_draws_in_order`` attribute, or a built-in generator known to: ``HouseholdMix``,
    whose ``batch`` draws one tuple per generator in a list comprehension)."""
    from .households import HouseholdMix

    if not isinstance(gen, BatchGenerator):
        return False
    flag = getattr(gen, "batch_draws_in_order", None)
    return bool(flag) if flag is not None else type(gen) is HouseholdMix


def tariff_series(gen: Any, horizon: int, dt_h: float, start_hour: float,
                  priced: bool | None = None) -> PriceSeries | None:
    """The generator's time-varying tariffs (validated for ``horizon`` steps), or None for flat tariffs.
    ``priced``: the result of ``isinstance(gen, PricedGenerator)`` if the caller has it."""
    if not (isinstance(gen, PricedGenerator) if priced is None else priced):
        return None
    prices = gen.prices(horizon, dt_h, start_hour)
    if prices is not None:
        prices.validate(horizon)
    return prices
