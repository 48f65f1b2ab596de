"""PV and load profiles from well-kept libraries (pvlib, demandlib), computed offline and cached.

Optional extra: ``pip install p2penv[profiles]`` (pvlib, demandlib, pandas). Nothing is downloaded
at run time: pvlib's clear-sky models and its Linke-turbidity/altitude tables, and demandlib's BDEW
tables, ship with the packages.

**PV** (:func:`pv_profile_kw_per_kwp`): pvlib solar position (NREL SPA, numpy) -> clear-sky
irradiance (``ineichen`` with pvlib's monthly Linke turbidity, ``simplified_solis``, or ``haurwitz``
whose GHI is split into DNI/DHI with the Erbs model) -> plane-of-array irradiance of a fixed plane
(``pvlib.irradiance.get_total_irradiance``, Hay-Davies sky diffuse, ground albedo 0.2) ->
``P / P_peak = derate * POA / (1000 W/m^2)``: a temperature-free PVWatts-like conversion; the
default ``derate = 0.86`` is PVWatts' 14 % system losses (soiling, shading, mismatch, wiring,
inverter, ...). :func:`cloudiness` is a seeded factor in ``[0, 1]`` multiplying the clear-sky output.

**Loads** (:func:`bdew_load_kw`): demandlib's BDEW standard load profiles (``h0`` households,
``h0_dyn`` households with BDEW's dynamisation polynomial, ``g0``-``g6`` commerce, ``l0``-``l2``
agriculture) with their three seasons (winter, summer, transition) and three day types (workday,
Saturday, Sunday), normalised so that a year holds ``annual_kwh``; read as the mean power over
each step (exact integral of the quarter-hour series, so any step length works). Public holidays
are not marked (demandlib's ``holidays=None``): they count as ordinary days.

Speed: one year of BDEW profiles costs demandlib ~0.5 s and a week of pvlib ~40 ms, so the
deterministic pieces are cached with :func:`functools.lru_cache` on hashable arguments
(:func:`bdew_year`, :func:`pv_step_mean_kw_per_kwp`); drawing an episode then only applies seeded
noise and scaling to cached arrays (see ``p2penv.generators.community``).

Times: pandas ``DatetimeIndex`` (or anything ``pd.DatetimeIndex`` accepts). pvlib needs absolute
times: naive ones are read in ``tz`` (default UTC). BDEW profiles follow the wall clock: aware
times are converted to their own zone's wall clock and read naive (demandlib has no DST notion).
"""
from __future__ import annotations

import warnings
from functools import lru_cache
from typing import Sequence

import numpy as np
from scipy.signal import lfilter

from .checks import missing_extra

try:
    import pandas as pd
    import pvlib
    from demandlib import bdew as _bdew
except ImportError as exc:  # core install: profiles are an optional extra
    raise missing_extra(__name__, "profile libraries (pvlib, demandlib, pandas)", "p2penv[profiles]") from exc

CLEAR_SKY_MODELS = ("ineichen", "haurwitz", "simplified_solis")
BDEW_PROFILES = ("h0", "h0_dyn", "g0", "g1", "g2", "g3", "g4", "g5", "g6", "l0", "l1", "l2")
PV_DERATE = 0.86  # PVWatts default system losses (14 %)
PV_SUBSTEP_H = 0.25  # PV step means average instantaneous output at <= 15 min sub-steps

# cloudiness defaults (see cloudiness()): daily clearness Beta(a, b), mean a / (a + b) = 0.65
CLOUD_DAILY_A = 2.6
CLOUD_DAILY_B = 1.4
CLOUD_SIGMA = 0.15  # stationary std of the intra-day AR(1) deviation at a half-clear day
CLOUD_TAU_H = 1.5  # correlation time of the intra-day deviation, hours


# ----------------------------------------------------------------------------------------- times
def _index(times) -> "pd.DatetimeIndex":
    return times if isinstance(times, pd.DatetimeIndex) else pd.DatetimeIndex(times)


def _aware(times, tz) -> "pd.DatetimeIndex":
    idx = _index(times)
    return idx.tz_localize(tz) if idx.tz is None else idx


def _wall_clock(times) -> "pd.DatetimeIndex":
    idx = _index(times)
    return idx if idx.tz is None else idx.tz_localize(None)


def _infer_dt_h(idx: "pd.DatetimeIndex", dt_h: float | None) -> float:
    if dt_h is not None:
        return float(dt_h)
    if len(idx) < 2:
        raise ValueError("times: a single timestamp needs an explicit dt_h")
    return (idx[1] - idx[0]).total_seconds() / 3600.0


def step_times(start, horizon: int, dt_h: float, tz=None) -> "pd.DatetimeIndex":
    """(T,) step start times ``start + k dt`` (``start``: anything ``pd.Timestamp`` takes)."""
    t0 = pd.Timestamp(start)
    if tz is not None and t0.tz is None:
        t0 = t0.tz_localize(tz)
    return t0 + pd.to_timedelta(np.arange(horizon) * float(dt_h), unit="h")


# -------------------------------------------------------------------------------------------- PV
def _clear_sky(loc: "pvlib.location.Location", idx, model: str, sp):
    if model not in CLEAR_SKY_MODELS:
        raise ValueError(f"model: unknown clear-sky model {model!r}; known {CLEAR_SKY_MODELS}")
    cs = loc.get_clearsky(idx, model=model, solar_position=sp)
    if model == "haurwitz":  # GHI only: split into beam and diffuse (Erbs)
        parts = pvlib.irradiance.erbs(cs["ghi"], sp["zenith"], idx)
        cs = cs.assign(dni=parts["dni"], dhi=parts["dhi"])
    return cs


def pv_poa_kw_per_kwp(times, latitude: float, longitude: float, planes: Sequence[tuple[float, float]],
                      model: str = "ineichen", *, altitude: float | None = None, tz="UTC",
                      derate: float = PV_DERATE, albedo: float = 0.2) -> np.ndarray:
    """(P, T) clear-sky kW per kWp at ``times`` for P planes ``(tilt, azimuth)`` (degrees; azimuth
    clockwise from north, 180 = south). One solar-position and clear-sky evaluation for all planes."""
    idx = _aware(times, tz)
    loc = pvlib.location.Location(latitude, longitude, altitude=altitude)
    sp = loc.get_solarposition(idx)
    cs = _clear_sky(loc, idx, model, sp)
    dni_extra = pvlib.irradiance.get_extra_radiation(idx)
    out = np.empty((len(planes), len(idx)))
    for k, (tilt, azimuth) in enumerate(planes):
        poa = pvlib.irradiance.get_total_irradiance(
            tilt, azimuth, sp["apparent_zenith"], sp["azimuth"], cs["dni"], cs["ghi"], cs["dhi"],
            dni_extra=dni_extra, albedo=albedo, model="haydavies")["poa_global"]
        out[k] = derate * np.clip(np.nan_to_num(np.asarray(poa, dtype=float)), 0.0, None) / 1000.0
    return out


def pv_profile_kw_per_kwp(times, latitude: float, longitude: float, tilt: float, azimuth: float,
                          model: str = "ineichen", *, altitude: float | None = None, tz="UTC",
                          derate: float = PV_DERATE, albedo: float = 0.2) -> np.ndarray:
    """(T,) instantaneous clear-sky PV output (kW per kWp) of a plane at ``times``.

    ``derate * POA / 1000``: temperature-free PVWatts-like model (module DC rating at 1000 W/m^2
    times the system derate, default 0.86). Zero at night. Naive ``times`` are read in ``tz``;
    ``altitude`` None uses pvlib's shipped altitude table.
    """
    return pv_poa_kw_per_kwp(times, latitude, longitude, [(tilt, azimuth)], model, altitude=altitude, tz=tz,
                             derate=derate, albedo=albedo)[0]


@lru_cache(maxsize=256)
def pv_step_mean_kw_per_kwp(starts: tuple, steps: int, dt_h: float, latitude: float, longitude: float,
                            planes: tuple[tuple[float, float], ...], model: str = "ineichen",
                            altitude: float | None = None, derate: float = PV_DERATE) -> np.ndarray:
    """Cached (P, S, T): mean clear-sky kW/kWp over each step ``[t, t + dt)`` of S runs of T steps.

    ``starts``: S timezone-aware ``pd.Timestamp`` (hashable), run ``s`` covers
    ``starts[s] + [0, steps) * dt``; ``planes``: P ``(tilt, azimuth)`` pairs. The step mean averages
    the instantaneous output at the midpoints of ``ceil(dt / 15 min)`` equal sub-steps. One pvlib
    evaluation for everything; the result is read-only (the cache shares it).
    """
    if any(pd.Timestamp(t).tz is None for t in starts):
        raise ValueError("starts: need timezone-aware timestamps (pvlib needs absolute time)")
    k = max(1, int(np.ceil(dt_h / PV_SUBSTEP_H - 1e-9)))
    offs_h = (np.arange(steps)[:, None] * dt_h + (np.arange(k)[None, :] + 0.5) * dt_h / k).ravel()
    offs = pd.to_timedelta(offs_h, unit="h")
    idx = pd.DatetimeIndex(np.concatenate([np.asarray((pd.Timestamp(t0) + offs).tz_convert("UTC").tz_localize(None))
                                           for t0 in starts])).tz_localize("UTC")
    inst = pv_poa_kw_per_kwp(idx, latitude, longitude, planes, model, altitude=altitude, derate=derate)
    out = inst.reshape(len(planes), len(starts), steps, k).mean(axis=-1)
    out.setflags(write=False)
    return out


def cloudiness(rng: np.random.Generator, n_steps: int, dt_h: float, start_hour: float = 0.0, size=(),
               *, daily_a: float = CLOUD_DAILY_A, daily_b: float = CLOUD_DAILY_B,
               sigma: float = CLOUD_SIGMA, tau_h: float = CLOUD_TAU_H) -> np.ndarray:
    """Seeded factor in ``[0, 1]`` multiplying clear-sky PV, shape ``size + (n_steps,)``.

    Model: each calendar day ``d`` (by the step midpoint, counted from the episode's first day) has
    a clearness ``c_d ~ Beta(daily_a, daily_b)`` (default mean 0.65: a mid-European mix of clear,
    broken and overcast days). Within the day the factor is
    ``k_t = clip(c_d + 2 sqrt(c_d (1 - c_d)) x_t, 0, 1)`` with ``x`` a stationary AR(1) process of
    standard deviation ``sigma`` and correlation time ``tau_h`` (``x_t = phi x_{t-1} +
    sigma sqrt(1 - phi^2) e_t``, ``phi = exp(-dt / tau)``), so variability is largest on broken-cloud
    days and vanishes on fully clear or fully overcast ones. Draws, in order: the daily clearness
    ``size + (days,)``, then ``size + (n_steps,)`` standard normals.
    """
    days = episode_days(n_steps, dt_h, start_hour)
    daily = rng.beta(daily_a, daily_b, tuple(size) + (days,))
    eps = rng.standard_normal(tuple(size) + (n_steps,))
    return cloud_factor(daily, eps, dt_h, start_hour, sigma=sigma, tau_h=tau_h)


def episode_days(n_steps: int, dt_h: float, start_hour: float) -> int:
    """Number of calendar days touched by the midpoints of ``n_steps`` steps from ``start_hour``."""
    return int((start_hour % 24.0 + (n_steps - 0.5) * dt_h) // 24.0) + 1


def cloud_factor(daily: np.ndarray, eps: np.ndarray, dt_h: float, start_hour: float = 0.0, *,
                 sigma: float = CLOUD_SIGMA, tau_h: float = CLOUD_TAU_H) -> np.ndarray:
    """Deterministic part of :func:`cloudiness`: ``daily (..., D)`` and normals ``eps (..., T)``."""
    n_steps = eps.shape[-1]
    day = ((start_hour % 24.0 + (np.arange(n_steps) + 0.5) * dt_h) // 24.0).astype(int)
    phi = float(np.exp(-dt_h / tau_h))
    u = sigma * np.sqrt(1.0 - phi * phi) * eps
    u[..., :1] = sigma * eps[..., :1]  # start in the stationary distribution
    x = lfilter([1.0], [1.0, -phi], u, axis=-1)
    c = daily[..., day]
    return np.clip(c + 2.0 * np.sqrt(c * (1.0 - c)) * x, 0.0, 1.0)


# ----------------------------------------------------------------------------------------- loads
@lru_cache(maxsize=16)
def bdew_year(year: int) -> dict[str, np.ndarray]:
    """Cached BDEW profiles of one year: quarter-hour mean power (kW) per 1 kWh of annual demand.

    ``{profile: (35040 or 35136,) read-only array}`` from ``demandlib.bdew.ElecSlp(year)``; each
    sums to 4 (kW x quarter-hours) = 1 kWh. demandlib sets ``warnings.simplefilter("error")``
    process-wide, so it runs inside ``warnings.catch_warnings()``.
    """
    with warnings.catch_warnings():
        frame = _bdew.ElecSlp(int(year)).get_scaled_power_profiles({p: 1.0 for p in BDEW_PROFILES})
    out = {}
    for p in BDEW_PROFILES:
        a = np.ascontiguousarray(frame[p].to_numpy(dtype=float))
        a.setflags(write=False)
        out[p] = a
    return out


@lru_cache(maxsize=64)
def _bdew_cumulative(profile: str, first_year: int, last_year: int) -> np.ndarray:
    """Cumulative energy (kWh per annual kWh) at the quarter-hour edges from ``first_year``-01-01."""
    p = np.concatenate([bdew_year(y)[profile] for y in range(first_year, last_year + 1)])
    c = np.concatenate([[0.0], np.cumsum(0.25 * p)])
    c.setflags(write=False)
    return c


def bdew_shape_kw(profile: str, times, dt_h: float | None = None) -> np.ndarray:
    """(T,) mean power (kW per kWh of annual demand) of a BDEW profile over ``[t, t + dt)``.

    Exact integral of the quarter-hour series, so any step length and offset works; ``times`` need
    not be regular (``dt_h`` applies to every step; inferred from the first two times if None).
    """
    profile = profile.lower()
    if profile not in BDEW_PROFILES:
        raise ValueError(f"profile: unknown BDEW profile {profile!r}; known {BDEW_PROFILES}")
    idx = _wall_clock(times)
    dt = _infer_dt_h(idx, dt_h)
    if not dt > 0:
        raise ValueError(f"dt_h: must be > 0 hours, got {dt}")
    end = idx + pd.to_timedelta(dt, unit="h")
    # an end at exactly 1 January 00:00 needs no table of the new year
    y0, y1 = int(idx.min().year), int((end.max() - pd.Timedelta(1, unit="ns")).year)
    cum = _bdew_cumulative(profile, y0, y1)
    origin = pd.Timestamp(year=y0, month=1, day=1)
    h0 = np.asarray((idx - origin) / pd.Timedelta(hours=1), dtype=float)
    edges = 0.25 * np.arange(cum.size)
    return (np.interp(h0 + dt, edges, cum) - np.interp(h0, edges, cum)) / dt


def bdew_load_kw(profile: str, times, annual_kwh, *, dt_h: float | None = None,
                 rng: np.random.Generator | None = None, noise: float = 0.0) -> np.ndarray:
    """Mean load (kW) over each step of a BDEW standard load profile scaled to ``annual_kwh``.

    ``profile``: ``h0`` (household), ``h0_dyn`` (household, dynamised), ``g0``-``g6`` (commerce),
    ``l0``-``l2`` (agriculture). ``annual_kwh``: scalar -> (T,), or (N,) -> (T, N) one column per
    agent. With ``rng`` and ``noise > 0`` every value gets an independent mean-one lognormal factor
    ``exp(noise z - noise^2 / 2)``, ``z ~ N(0, 1)`` drawn as ``rng.standard_normal(shape)``.
    """
    shape = bdew_shape_kw(profile, times, dt_h)
    kwh = np.asarray(annual_kwh, dtype=float)
    load = shape * kwh if kwh.ndim == 0 else shape[:, None] * kwh[None, :]
    if rng is not None and noise > 0:
        load = load * np.exp(noise * rng.standard_normal(load.shape) - 0.5 * noise * noise)
    return load
