"""Library-backed profiles (pvlib PV, demandlib BDEW loads), tariffs and the ProfileCommunity generator."""
import datetime as dt
import importlib
import sys

import numpy as np
import pytest

import demandlib  # noqa: F401  (test extra: the profiles are tested, never skipped)
import pvlib  # noqa: F401
import pandas as pd  # noqa: E402

from p2penv import auction_v0  # noqa: E402
from p2penv.generators import profiles as P  # noqa: E402
from p2penv.generators.community import ProfileCommunity, _community_shapes  # noqa: E402
from p2penv.market.prosumer import Fleet  # noqa: E402
from p2penv.generators.tariffs import (TouTariff, WholesaleModel, day_of_week, tou_retail_price,  # noqa: E402
                                       wholesale_price)

CET = dt.timezone(dt.timedelta(hours=1))
LAT, LON, ALT = 50.11, 8.68, 112.0  # Frankfurt am Main; solar noon ~12:25 CET in June
FIELDS = ("demand_kw", "p_max_kw", "ramp_kw", "eta", "cost_a", "cost_b", "p0_kw", "bus", "shed_value")


def _day_pv(date, model, dt_h=0.25, planes=((30.0, 180.0),)):
    steps = int(round(24 / dt_h))
    return P.pv_step_mean_kw_per_kwp((pd.Timestamp(date, tz=CET),), steps, dt_h, LAT, LON, planes, model, ALT)[0, 0]


# ------------------------------------------------------------------------------------------ PV
@pytest.mark.parametrize("model", P.CLEAR_SKY_MODELS)
def test_pv_clear_sky_day_zero_at_night_peak_at_noon_and_plausible_yield(model):
    pv = _day_pv("2025-06-21", model)
    hours = 0.25 * np.arange(96)
    assert np.all(pv >= 0)
    assert np.all(pv[(hours < 3.5) | (hours >= 22.0)] == 0.0)
    peak = hours[np.argmax(pv)] + 0.125
    assert abs(peak - 12.42) < 0.75, peak  # solar noon at 8.68 E in CET
    assert 0.6 < pv.max() < 1.0  # kW per kWp, derate 0.86
    kwh = pv.sum() * 0.25
    assert 5.0 < kwh < 8.0, kwh  # summer clear-sky kWh/kWp/day, mid-Europe
    winter = _day_pv("2025-12-21", model).sum() * 0.25
    assert 1.0 < winter < 3.5 and winter < 0.5 * kwh


def test_pv_instantaneous_function_and_step_means_agree():
    times = pd.date_range("2025-06-21 00:07:30", periods=96, freq="15min", tz=CET)
    inst = P.pv_profile_kw_per_kwp(times, LAT, LON, 30.0, 180.0, altitude=ALT)
    np.testing.assert_allclose(inst, _day_pv("2025-06-21", "ineichen"), rtol=1e-12, atol=1e-12)
    naive = P.pv_profile_kw_per_kwp(times.tz_localize(None), LAT, LON, 30.0, 180.0, altitude=ALT, tz=CET)
    np.testing.assert_array_equal(inst, naive)
    hourly = _day_pv("2025-06-21", "ineichen", dt_h=1.0)
    np.testing.assert_allclose(hourly, inst.reshape(24, 4).mean(axis=1), rtol=1e-12, atol=1e-12)
    east, west = P.pv_poa_kw_per_kwp(times, LAT, LON, [(30.0, 90.0), (30.0, 270.0)], altitude=ALT)
    assert np.argmax(east) < np.argmax(inst) < np.argmax(west)
    with pytest.raises(ValueError, match="clear-sky model"):
        P.pv_profile_kw_per_kwp(times, LAT, LON, 30.0, 180.0, model="nope")


def test_pv_week_is_cached_and_read_only():
    start = (pd.Timestamp("2025-06-16", tz=CET),)
    a = P.pv_step_mean_kw_per_kwp(start, 168, 1.0, LAT, LON, ((30.0, 180.0),), "ineichen", ALT)
    b = P.pv_step_mean_kw_per_kwp(start, 168, 1.0, LAT, LON, ((30.0, 180.0),), "ineichen", ALT)
    assert a is b and a.shape == (1, 1, 168) and not a.flags.writeable
    days = a[0, 0].reshape(7, 24)
    assert np.all(days[:, :3] == 0) and np.all(days.argmax(axis=1) == 12)


def test_cloudiness_in_unit_interval_seeded_and_daily():
    c = P.cloudiness(np.random.default_rng(3), 96, 0.25, 0.0, size=(500,))
    assert c.shape == (500, 96) and np.all((c >= 0) & (c <= 1))
    np.testing.assert_array_equal(c, P.cloudiness(np.random.default_rng(3), 96, 0.25, 0.0, size=(500,)))
    assert not np.array_equal(c, P.cloudiness(np.random.default_rng(4), 96, 0.25, 0.0, size=(500,)))
    assert 0.55 < c.mean() < 0.75  # daily Beta(2.6, 1.4): mean 0.65
    week = P.cloudiness(np.random.default_rng(0), 168, 1.0)
    assert week.shape == (168,) and P.episode_days(168, 1.0, 0.0) == 7 and P.episode_days(24, 1.0, 6.0) == 2
    day_means = week.reshape(7, 24).mean(axis=1)
    assert day_means.std() > 0.02  # days differ


# --------------------------------------------------------------------------------------- loads
@pytest.mark.parametrize("profile,freq", [("h0", "1h"), ("h0", "15min"), ("h0_dyn", "1h"), ("g0", "1h")])
def test_bdew_annual_energy_matches(profile, freq):
    times = pd.date_range("2025-01-01", "2025-12-31 23:59", freq=freq)
    dt_h = pd.Timedelta(freq) / pd.Timedelta(hours=1)
    load = P.bdew_load_kw(profile, times, 3500.0)
    assert load.shape == (len(times),) and np.all(load > 0)
    assert abs(load.sum() * dt_h / 3500.0 - 1.0) < 0.01


def test_bdew_step_mean_is_exact_and_per_agent():
    quarter = P.bdew_load_kw("h0", pd.date_range("2025-03-03", periods=7 * 96, freq="15min"), 1000.0)
    hourly = P.bdew_load_kw("h0", pd.date_range("2025-03-03", periods=7 * 24, freq="1h"), 1000.0)
    np.testing.assert_allclose(hourly, quarter.reshape(-1, 4).mean(axis=1), rtol=1e-9)
    two = P.bdew_load_kw("h0", pd.date_range("2025-03-03", periods=24, freq="1h"), [1000.0, 3000.0])
    np.testing.assert_allclose(two[:, 1], 3 * two[:, 0])
    # across New Year: both years' tables, no gap
    ny = P.bdew_load_kw("g0", pd.date_range("2025-12-31", periods=48, freq="1h"), 1000.0)
    assert ny.shape == (48,) and np.all(ny > 0)
    noisy = P.bdew_load_kw("h0", pd.date_range("2025-03-03", periods=24, freq="1h"), [1000.0] * 4,
                           rng=np.random.default_rng(0), noise=0.2)
    assert noisy.shape == (24, 4) and not np.allclose(noisy[:, 0], noisy[:, 1])
    with pytest.raises(ValueError, match="unknown BDEW profile"):
        P.bdew_shape_kw("x9", pd.date_range("2025-03-03", periods=2, freq="1h"))


def test_bdew_weekday_weekend_and_season_differ():
    times = pd.date_range("2025-01-01", periods=8760, freq="1h")
    daily = {p: pd.Series(P.bdew_load_kw(p, times, 1000.0), times).resample("D").sum() for p in ("h0", "h0_dyn", "g0")}
    dow = daily["g0"].index.dayofweek
    assert daily["g0"][dow == 6].mean() < 0.6 * daily["g0"][dow < 5].mean()  # shops closed on Sunday
    assert daily["h0"][dow == 5].mean() > 1.05 * daily["h0"][dow < 5].mean()  # households: Saturday higher
    jan, jul = daily["h0_dyn"]["2025-01"].mean(), daily["h0_dyn"]["2025-07"].mean()
    assert jan > 1.2 * jul  # dynamised H0: winter households use more
    h0 = pd.Series(P.bdew_load_kw("h0", times, 1000.0), times)
    winter_wd = h0["2025-01-15"].to_numpy()  # Wednesdays
    summer_wd = h0["2025-07-16"].to_numpy()
    assert np.abs(winter_wd / winter_wd.sum() - summer_wd / summer_wd.sum()).max() > 0.005  # seasonal shape


# ------------------------------------------------------------------------------------- tariffs
def test_tou_tariff_documented_periods():
    times = pd.date_range("2025-06-16", periods=24 * 7, freq="1h")  # Monday..Sunday
    price = tou_retail_price(times)
    h = times.hour.to_numpy()
    assert np.all(price[(h >= 22) | (h < 7)] == 0.18)
    assert np.all(price[((h >= 7) & (h < 17)) | (h == 21)] == 0.26)
    assert np.all(price[(h >= 17) & (h < 21)] == 0.38)
    quarter = tou_retail_price(pd.date_range("2025-06-16 16:45", periods=2, freq="15min"))
    assert quarter.tolist() == [0.26, 0.38]
    no_wkend = TouTariff(weekend_peak=False)(times)
    wkend = times.dayofweek.to_numpy() >= 5
    assert np.all(no_wkend[wkend & (h >= 17) & (h < 21)] == 0.26)
    np.testing.assert_array_equal(no_wkend[~wkend], price[~wkend])
    assert day_of_week(np.array(["2025-06-16T12:00"], dtype="datetime64[m]"))[0] == 0  # numpy input, Monday


def test_wholesale_seeded_floored_with_daily_and_seasonal_shape():
    week = pd.date_range("2025-06-16", periods=168, freq="1h")
    a = wholesale_price(week, np.random.default_rng(1))
    np.testing.assert_array_equal(a, wholesale_price(week, np.random.default_rng(1)))
    assert not np.array_equal(a, wholesale_price(week, np.random.default_rng(2)))
    assert np.all(a >= WholesaleModel().floor)
    shape = wholesale_price(week)  # no rng: noise-free
    np.testing.assert_array_equal(shape, wholesale_price(week))
    day = shape[:24]
    assert day[19] > day[8] > day[3] and day[13] < day[3]  # evening > morning > night > summer midday dip
    assert shape[5 * 24 + 19] < shape[19]  # Saturday below Monday
    winter = wholesale_price(pd.date_range("2025-01-13", periods=24, freq="1h"))
    assert winter.mean() > day.mean() * 1.2
    assert np.all(WholesaleModel(base=0.0, morning=0.0, evening=0.0, floor=0.02)(week) == 0.02)


# ----------------------------------------------------------------------------------- generator
def _assert_fleets_equal(a: Fleet, b: Fleet):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(a, f), getattr(b, f), err_msg=f)


@pytest.mark.parametrize("horizon,dt_h,start_hour", [(24, 1.0, 0.0), (168, 1.0, 6.0), (672, 0.25, 0.0)])
def test_community_deterministic_batch_equals_calls_and_valid(horizon, dt_h, start_hour):
    gen = ProfileCommunity(n_days=7)
    n = 7
    f = gen(n, horizon, dt_h, start_hour, np.random.default_rng(5))
    f.validate()
    assert f.demand_kw.shape == (horizon, n) and f.p_max_kw.shape == (horizon, n)
    _assert_fleets_equal(f, gen(n, horizon, dt_h, start_hour, np.random.default_rng(5)))
    assert not np.array_equal(f.demand_kw, gen(n, horizon, dt_h, start_hour, np.random.default_rng(6)).demand_kw)
    seeds = [3, 5, 8, 13]
    b = gen.batch(n, horizon, dt_h, start_hour, [np.random.default_rng(s) for s in seeds])
    b.validate()
    assert b.num_envs == 4 and b.demand_kw.shape == (4, horizon, n)
    for e, s in enumerate(seeds):
        _assert_fleets_equal(b.env(e), gen(n, horizon, dt_h, start_hour, np.random.default_rng(s)))
    # PV only for pv households, zero at night (local hours 0-3)
    hours = (start_hour + dt_h * np.arange(horizon)) % 24
    kinds = [gen.kinds[i % len(gen.kinds)] for i in range(n)]
    pv = np.array([k == "pv_household" for k in kinds])
    assert np.all(b.p_max_kw[:, :, ~pv] == 0) and b.p_max_kw[:, :, pv].max() > 0.5
    assert np.all(b.p_max_kw[:, hours < 3, :] == 0)
    assert np.all(b.demand_kw > 0)
    assert np.isinf(f.shed_values[~np.array([k == "flexible_load" for k in kinds])]).all()


def test_community_shapes_cached_and_cheap_draws():
    gen = ProfileCommunity(start_date="2025-12-29", n_days=3, kinds=("pv_household", "commercial", "dispatchable"))
    before = _community_shapes.cache_info()
    f = gen(3, 96, 0.25, 0.0, np.random.default_rng(0))  # runs into the next year
    f.validate()
    s1 = gen.shapes(96, 0.25, 0.0)
    s2 = gen.shapes(96, 0.25, 0.0)
    assert s1[0] is s2[0] and not s1[0].flags.writeable and not s1[1].flags.writeable
    assert _community_shapes.cache_info().hits >= before.hits + 2
    assert s1[0].shape == (3, 96, 3) and s1[1].shape == (3, 96, 2)
    assert np.all(f.p_max_kw[:, 2] == f.p_max_kw[0, 2])  # dispatchable rating constant
    assert f.demand_kw[:, 1].mean() > f.demand_kw[:, 0].mean()  # commercial load bigger than a household


def test_community_tariffs_on_the_civil_clock():
    std = ProfileCommunity(civil_tz=None)
    np.testing.assert_array_equal(std.retail_tariff(24, 1.0, 0.0), TouTariff().hourly())
    summer = ProfileCommunity()  # Europe/Berlin: CEST in June, peak 17-21 civil = 16-20 standard time
    r = summer.retail_tariff(96, 0.25, 0.0)
    assert r.shape == (96,) and np.all(r[16 * 4:20 * 4] == 0.38) and r[20 * 4] == 0.26
    w = summer.wholesale_price(168, 1.0, 0.0)
    assert w.shape == (168,) and np.all(w >= 0.01)
    np.testing.assert_array_equal(summer.wholesale_price(24, 1.0, 0.0, np.random.default_rng(1)),
                                  summer.wholesale_price(24, 1.0, 0.0, np.random.default_rng(1)))
    with pytest.raises(ValueError, match="kinds"):
        ProfileCommunity(kinds=("pv_household", "nuclear"))


def test_envs_run_with_profile_community():
    env = auction_v0.parallel_env(generator=ProfileCommunity(), max_cycles=168)
    obs, _ = env.reset(seed=0)
    rng = np.random.default_rng(0)
    steps = 0
    while env.agents:
        _, rew, _, _, _ = env.step({a: rng.uniform(-1, 1, 2) for a in env.agents})
        assert all(np.isfinite(v) for v in rew.values())
        steps += 1
    assert steps == 168
    vec = auction_v0.vector_env(4, generator=ProfileCommunity(n_days=5), max_cycles=24, n_prosumers=6)
    obs, _ = vec.reset(seed=1)
    assert obs.shape[:2] == (4, 6)
    for _ in range(30):  # through an autoreset
        obs, r, term, trunc, _ = vec.step(rng.uniform(-1, 1, (4, 6, 2)))
        assert np.all(np.isfinite(r))


def test_import_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "pvlib", None)
    monkeypatch.delitem(sys.modules, "p2penv.generators.profiles")
    with pytest.raises(ImportError, match=r"pip install p2penv\[profiles\]"):
        importlib.import_module("p2penv.generators.profiles")
