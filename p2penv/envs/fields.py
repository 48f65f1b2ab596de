"""Observation and info fields of the market environments: one list each, by name.

The environments build their observation and info columns from these lists (never by a bare
column index) and the docs tables are generated from them (``field_table``), so code, docstrings
and docs cannot drift apart.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Field:
    """One observation or info column: name, physical unit, how it is scaled, its range."""

    name: str
    unit: str
    scaling: str
    range: str = "[-1, 1]"


PRICE_SCALING = "2 (x - price_floor) / (price_cap - price_floor) - 1"
KW_SCALING = "x / obs_kw_scale"

OBS_FIELDS: tuple[Field, ...] = (
    Field("demand", "kW", KW_SCALING + ": own demand d_t"),
    Field("availability", "kW", KW_SCALING + ": own DER availability P_max,t"),
    Field("prev_dispatch", "kW", KW_SCALING + ": own dispatch p_{t-1}"),
    Field("feasible_lo", "kW", KW_SCALING + ": lower end of this step's dispatch interval"),
    Field("feasible_hi", "kW", KW_SCALING + ": upper end of this step's dispatch interval"),
    Field("hour_sin", "-", "sin(2 pi hour / 24)"),
    Field("hour_cos", "-", "cos(2 pi hour / 24)"),
    Field("last_price", "$/kWh", PRICE_SCALING + ": last clearing price"),
    Field("last_volume", "kWh", "x / (N obs_kw_scale dt_h): last traded volume"),
    Field("mc_lo", "$/kWh", PRICE_SCALING + ": own marginal cost at the grid, (2 a E + b) / eta, at feasible_lo"),
    Field("mc_hi", "$/kWh", PRICE_SCALING + ": own marginal cost at feasible_hi"),
    Field("buy_value", "$/kWh", PRICE_SCALING + ": most the agent pays for market energy (retail, or "
                                                "a flexible load's value of lost load)"),
)

STORAGE_OBS_FIELDS: tuple[Field, ...] = (  # appended when the scenario has batteries
    Field("soc", "kWh", "2 SOC / capacity - 1 (-1 without a battery)"),
    Field("charge_max", "kW", KW_SCALING + ": battery charging power allowed this step (< 0 only when "
                              "soc_end forces discharging at least -x)"),
    Field("discharge_max", "kW", KW_SCALING + ": battery discharging power allowed this step (< 0 only when "
                                 "soc_end forces charging at least -x)"),
)

DLMP_COMPONENTS: tuple[str, ...] = ("energy", "loss", "congestion", "voltage")  # DLMP = their sum
DLMP_OBS_FIELDS: tuple[Field, ...] = (
    Field("dlmp", "$/kWh", PRICE_SCALING + ": own bus DLMP of the last step"),
    Field("dlmp_energy", "$/kWh", PRICE_SCALING + ": its energy component"),
    *(Field(f"dlmp_{c}", "$/kWh", f"2 x / (price_cap - price_floor): its {c} component") for c in DLMP_COMPONENTS[1:]),
)

INFO_FIELDS: tuple[Field, ...] = (
    Field("bid_price", "$/kWh", "limit price of the order", "[price_floor, price_cap]"),
    Field("dispatch_kw", "kW", "realised DER dispatch", "[feasible_lo_kw, feasible_hi_kw]"),
    Field("net_kwh", "kWh", "realised net position (> 0 sold)", "R"),
    Field("side", "-", "+1 sell, -1 buy, 0 no order", "{-1, 0, 1}"),
    Field("order_kwh", "kWh", "order volume", ">= 0"),
    Field("matched_kwh", "kWh", "volume the market matched", "[0, order_kwh]"),
    Field("unit_price", "$/kWh", "price paid or received on matched volume", "R"),
    Field("market_cash", "$", "cash from matched trades (> 0 received)", "R"),
    Field("backstop_import_kwh", "kWh", "bought at the retail tariff", ">= 0"),
    Field("backstop_export_kwh", "kWh", "sold at the feed-in tariff", ">= 0"),
    Field("curtailed_kwh", "kWh", "unmatched export removed by curtailment (unmatched='curtail')", ">= 0"),
    Field("shed_kwh", "kWh", "unmatched demand of a flexible load, shed at its value of lost load", ">= 0"),
    Field("cost", "$", "DER cost C(E) = a E^2 + b E", ">= 0"),
    Field("feasible_lo_kw", "kW", "lower end of the step's dispatch interval", ">= 0"),
    Field("feasible_hi_kw", "kW", "upper end of the step's dispatch interval", ">= 0"),
    Field("ramp_violation_kw", "kW", "> 0 only when availability fell below the ramp floor", ">= 0"),
    Field("clip_price", "-", "how far action[0] lay outside [-1, 1] (it was clipped)", ">= 0"),
    Field("clip_dispatch", "-", "how far action[1] lay outside [-1, 1]", ">= 0"),
)

# info levels of the auction envs (``info_level=`` at construction): "full" returns every per-agent field above
# (and the storage/DLMP ones), "lean" only these, what a trainer reads: own matched volume, own cash from the
# market (revenue > 0, payment < 0) and own DER cost. Both carry the shared ``"market"`` dict (clearing price,
# volume, welfare, operator surplus, step). A lean env still gives every field on demand: ``env.full_infos()``.
INFO_LEVELS: tuple[str, ...] = ("full", "lean")
LEAN_INFO_NAMES: tuple[str, ...] = ("matched_kwh", "market_cash", "cost")
MARKET_INFO_FIELDS: tuple[Field, ...] = (  # infos[agent]["market"] (single env), infos["market"] (vector env)
    Field("t", "-", "step index of the step just taken", "[0, max_cycles)"),
    Field("clearing_price", "$/kWh", "the book's reference (uniform) price; nan for an empty book", "R"),
    Field("volume_kwh", "kWh", "volume traded", ">= 0"),
    Field("welfare", "$", "declared gains from trade: matched x (bid - ask)", "R"),
    Field("operator_surplus", "$", "buyer payments - seller receipts (0: strongly budget balanced)",
          "R (>= 0: weakly budget balanced)"),
)

STORAGE_INFO_FIELDS: tuple[Field, ...] = (  # present when the scenario has batteries
    Field("soc_kwh", "kWh", "battery state of charge after the step", "[soc_min_kwh, soc_max_kwh]"),
    Field("soc_min_kwh", "kWh", "lower SOC bound", ">= 0"),
    Field("soc_max_kwh", "kWh", "upper SOC bound", "<= capacity"),
    Field("charge_kw", "kW", "battery charging power of the step", "[0, charge_max]"),
    Field("discharge_kw", "kW", "battery discharging power of the step", "[0, discharge_max]"),
    Field("clip_storage", "-", "how far action[2] lay outside [-1, 1]", ">= 0"),
    Field("storage_ignored", "-", "|action[2]| of an agent without a battery (ignored)", ">= 0"),
    Field("battery_lo_kw", "kW", "lower end of the step's battery power interval, -discharge_max (> 0 charging)",
          "[-P_discharge, battery_hi_kw]"),
    Field("battery_hi_kw", "kW", "upper end of the step's battery power interval, charge_max",
          "[battery_lo_kw, P_charge]"),
    Field("soc_end_narrowing_kw", "kW", "width the end-of-episode SOC constraint (generator.soc_end='start') cut "
                                        "from the battery interval; 0 without it", ">= 0"),
)

DLMP_INFO_FIELDS: tuple[Field, ...] = (
    Field("dlmp", "$/kWh", "DLMP at the agent's bus", "R"),
    *(Field(f"dlmp_{c}", "$/kWh", f"{c} component", "R") for c in DLMP_COMPONENTS),
    Field("voltage_pu", "p.u.", "realised LinDistFlow voltage magnitude at the agent's bus", "> 0"),
)


def names(fields: tuple[Field, ...]) -> tuple[str, ...]:
    return tuple(f.name for f in fields)


def field_table(fields: tuple[Field, ...], start: int = 0) -> str:
    """Markdown table ``| index | name | unit | scaling | range |`` for docs and docstrings."""
    rows = ["| index | name | unit | scaling | range |", "|---|---|---|---|---|"]
    rows += [f"| {i} | `{f.name}` | {f.unit} | {f.scaling} | {f.range} |" for i, f in enumerate(fields, start)]
    return "\n".join(rows)


def fields_doc() -> str:
    """The text of ``docs/fields.md`` (regenerate with ``python -m p2penv.envs.fields > docs/fields.md``)."""
    parts = [
        "# Observation and info fields",
        "",
        "Generated from `p2penv/envs/fields.py` (`python -m p2penv.envs.fields > docs/fields.md`); a test "
        "checks that this file matches the code. Observations are float32 and clipped to [-1, 1]; the "
        "vector envs use the same columns on the last axis of `(E, N, F)`.",
        "",
        "## auction_v0 observation (F = %d)" % len(OBS_FIELDS),
        "",
        field_table(OBS_FIELDS),
        "",
        "## dlmp_v0 observation (F = %d without batteries): the auction_v0 fields, then"
        % (len(OBS_FIELDS) + len(DLMP_OBS_FIELDS)),
        "",
        field_table(DLMP_OBS_FIELDS, start=len(OBS_FIELDS)),
        "",
        "## Per-agent infos (floats; single env: `infos[agent][name]`, vector env: `infos[name]` of shape (E, N))",
        "",
        "Every field below with `info_level=\"full\"` (the default); with `info_level=\"lean\"` (what the trainers "
        "use) only " + ", ".join(f"`{n}`" for n in LEAN_INFO_NAMES) + ", and `env.full_infos()` returns all of "
        "them for the step last taken.",
        "",
        field_table(INFO_FIELDS),
        "",
        "## The market dict (both levels; single env: `infos[agent][\"market\"]`, one dict shared by all agents; "
        "vector env: `infos[\"market\"][name]` of shape (E,))",
        "",
        field_table(MARKET_INFO_FIELDS),
        "",
        "## With batteries (scenarios whose generator has storage): observation fields appended after the "
        "auction_v0 ones (before dlmp_v0's), and infos",
        "",
        field_table(STORAGE_OBS_FIELDS, start=len(OBS_FIELDS)),
        "",
        field_table(STORAGE_INFO_FIELDS),
        "",
        "## dlmp_v0 adds",
        "",
        field_table(DLMP_INFO_FIELDS),
        "",
    ]
    return "\n".join(parts)


if __name__ == "__main__":
    print(fields_doc(), end="")
