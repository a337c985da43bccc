"""Counter analysis (cut_processes.analysis.cycling_counts) on hand-made series.

The synthetic stations follow a known law: a weekday level, Sunday-like weekends and public
holidays (Bavaria), +3 % per °C of maximum temperature, -15 % per unit of log(1 + rain),
a seasonal wave and lognormal noise (sigma 0.1). Tests inject outages, drops, flat lines
and level shifts and check what the analysis finds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cut_processes.analysis.calendar_de import calendar_features, normalise_state
from cut_processes.analysis.cycling_counts import (
    WEATHER_FIELDS,
    analyse_station,
    daily_series,
    snow_pack_mm,
)
from cut_processes.io.inputs import InputProblem

WEEKEND = math.log(0.5)
TEMPERATURE = 0.03  # log per °C
RAIN = -0.15  # log per log1p(mm)


def synthetic(
    start: str = "2019-01-01",
    end: str = "2022-12-31",
    *,
    base: float = 1000.0,
    seed: int = 7,
    noise: float = 0.1,
    yearly_growth: float = 0.0,
) -> dict:
    """Dates, weather and true expected counts of a station following the law above."""
    rng = np.random.default_rng(seed)
    dates = np.arange(np.datetime64(start), np.datetime64(end) + np.timedelta64(1, "D"))
    n = len(dates)
    doy = (dates - dates.astype("datetime64[Y]")).astype(float)
    tmax = 13 + 10 * np.sin(2 * np.pi * (doy - 110) / 365.25) + rng.normal(0, 3, n)
    tmin = tmax - 8 + rng.normal(0, 1, n)
    rain = np.where(rng.random(n) < 0.4, rng.exponential(5, n), 0.0).round(1)
    sun = np.clip(6 + 4 * np.sin(2 * np.pi * (doy - 80) / 365.25) - 0.4 * rain, 0, 15).round(1)
    cloud = np.clip(50 + 4 * rain + rng.normal(0, 15, n), 0, 100).round(0)
    cal = calendar_features(dates, "BY")
    off = (cal.weekday >= 5) | cal.public_holiday
    years = dates.astype("datetime64[Y]").astype(int) + 1970
    log_mean = (
        np.log(base)
        + WEEKEND * off
        + TEMPERATURE * (tmax - 15)
        + RAIN * np.log1p(rain)
        + 0.15 * np.sin(2 * np.pi * doy / 365.25)
        + yearly_growth * (years - years[0])
    )
    counts = np.round(np.exp(log_mean + rng.normal(0, noise, n)))
    return {
        "dates": dates,
        "counts": counts,
        "truth": np.exp(log_mean),
        "weather": {
            "min_temperature_c": tmin.round(1),
            "max_temperature_c": tmax.round(1),
            "precipitation_mm": rain,
            "cloud_cover_percent": cloud,
            "sunshine_hours": sun,
        },
    }


def records(data: dict, station: str = "S1", skip: set[int] | None = None) -> list[dict]:
    out = []
    for i, day in enumerate(data["dates"]):
        if skip and i in skip:
            continue
        out.append({
            "station_id": station,
            "date": str(day),
            "count": float(data["counts"][i]),
            **{name: float(data["weather"][name][i]) for name in WEATHER_FIELDS},
        })  # fmt: skip
    return out


def one_series(data: dict, **kwargs):
    (series,) = daily_series(records(data, **kwargs), default_state="BY")
    return series


def index_of(data: dict, day: str) -> int:
    return int((np.datetime64(day) - data["dates"][0]).astype(int))


def periods(result, kind: str) -> list:
    return [a for a in result.anomalies if a.kind == kind]


# --- model --------------------------------------------------------------------------------


def test_known_weekday_and_temperature_effects_are_recovered():
    data = synthetic()
    result = analyse_station(one_series(data))
    coefficients = result.model["coefficients"]
    assert coefficients["Sat"] == pytest.approx(WEEKEND, abs=0.05)
    assert coefficients["Sun"] == pytest.approx(WEEKEND, abs=0.05)
    assert abs(coefficients["Wed"]) < 0.03
    # temperature: the same Wednesday at 10 °C and 20 °C, everything else equal
    weather = {"min_temperature_c": 5.0, "precipitation_mm": 0.0, "cloud_cover_percent": 50.0,
               "sunshine_hours": 6.0}  # fmt: skip
    warm, cold = analyse_station(
        one_series(data),
        forecast=[
            {"date": "2023-05-10", "max_temperature_c": 20.0, **weather},
            {"date": "2023-05-17", "max_temperature_c": 10.0, **weather},
        ],
    ).forecast
    assert warm["expected"] / cold["expected"] == pytest.approx(
        math.exp(10 * TEMPERATURE), rel=0.06
    )
    assert result.model["r2_log"] > 0.9
    # a clean series gets (almost) no flags
    flagged = sum(f is not None for f in result.flags)
    assert flagged <= 0.01 * len(result.flags)
    assert [a.kind for a in result.anomalies if a.kind == "level_shift"] == []


def test_expected_counts_follow_the_true_law():
    data = synthetic(seed=11)
    result = analyse_station(one_series(data))
    error = np.abs(result.expected - data["truth"]) / data["truth"]
    assert np.median(error) < 0.04
    coverage = np.mean((data["counts"] >= result.low) & (data["counts"] <= result.high))
    assert 0.9 < coverage < 0.99  # 95 % intervals


def test_trend_index_follows_yearly_growth():
    data = synthetic(yearly_growth=math.log(1.1), seed=3)
    result = analyse_station(one_series(data), base_year=2019)
    index = {t["year"]: t["index"] for t in result.trend}
    assert index[2019] == 100.0
    for year, expected in ((2020, 110.0), (2021, 121.0), (2022, 133.1)):
        assert index[year] == pytest.approx(expected, rel=0.03)
    assert all(t["low"] <= t["index"] <= t["high"] for t in result.trend)
    with pytest.raises(InputProblem) as err:
        analyse_station(one_series(data), base_year=2010)
    assert err.value.input_name == "base_year" and "2010" in err.value.problem


# --- anomalies ----------------------------------------------------------------------------


def test_outage_drop_flat_line_and_level_shift_are_found_with_kind_and_dates():
    data = synthetic(start="2018-01-01", seed=5)
    counts = data["counts"]
    outage = slice(index_of(data, "2019-03-04"), index_of(data, "2019-03-13") + 1)  # 10 days
    counts[outage] = 0
    drop = slice(index_of(data, "2019-09-02"), index_of(data, "2019-10-13") + 1)  # 42 days
    counts[drop] = np.round(counts[drop] * 0.3)
    flat = slice(index_of(data, "2020-06-01"), index_of(data, "2020-06-05") + 1)  # 5 days
    counts[flat] = 777
    shift = index_of(data, "2021-04-01")
    counts[shift:] = np.round(counts[shift:] * 2.2)
    result = analyse_station(one_series(data))

    found = periods(result, "outage")
    zero = [a for a in found if a.start == "2019-03-04"]
    assert zero and zero[0].end == "2019-03-13" and zero[0].days == 10
    assert "zero counts" in zero[0].reason
    stuck = [a for a in found if a.start == "2020-06-01"]
    assert stuck and stuck[0].end == "2020-06-05" and "flat line" in stuck[0].reason

    (lasting,) = [a for a in periods(result, "drop") if a.days > 20]
    assert abs(np.datetime64(lasting.start) - np.datetime64("2019-09-02")) <= np.timedelta64(3, "D")
    assert abs(np.datetime64(lasting.end) - np.datetime64("2019-10-13")) <= np.timedelta64(3, "D")
    assert lasting.mean_ratio == pytest.approx(0.3, abs=0.06)

    (level,) = periods(result, "level_shift")
    assert abs(np.datetime64(level.start) - np.datetime64("2021-04-01")) <= np.timedelta64(7, "D")
    assert level.mean_ratio == pytest.approx(2.2, rel=0.08)
    assert level.end == "2022-12-31"
    # the model has the step: the days after the shift are not flagged, the trend is level
    after = result.dates >= np.datetime64("2021-05-01")
    assert sum(f is not None for f in result.flags[after]) <= 0.01 * after.sum()
    index = {t["year"]: t["index"] for t in result.trend}
    assert index[2022] == pytest.approx(100.0, abs=5.0)
    # nothing else of note
    other = [a for a in result.anomalies if a.days >= 3 and a not in (lasting, level, *found)]
    assert other == []


@pytest.mark.parametrize("factor", [2.0, 0.5])
def test_a_step_after_six_months_of_a_two_year_series_is_a_level_shift(factor):
    # On two years the seasonal terms of the model without levels take up part of the step
    # (the first half-year looks like a season), so the step is estimated jointly with them.
    data = synthetic(start="2021-01-01", end="2022-12-31", seed=1)
    shift = index_of(data, "2021-07-01")
    data["counts"][shift:] = np.round(data["counts"][shift:] * factor)
    result = analyse_station(one_series(data))

    (level,) = periods(result, "level_shift")
    assert abs(np.datetime64(level.start) - np.datetime64("2021-07-01")) <= np.timedelta64(7, "D")
    assert level.mean_ratio == pytest.approx(factor, rel=0.08)
    assert level.end == "2022-12-31"
    # the model has the step: the days after it are not flagged, nothing else is
    after = result.dates >= np.datetime64("2021-08-01")
    assert sum(f is not None for f in result.flags[after]) <= 0.01 * after.sum()
    assert [a for a in result.anomalies if a.days >= 3 and a is not level] == []


def test_a_surge_season_of_a_two_year_series_is_not_mirrored_into_the_other_year():
    # The robust model without levels may take the surging autumn of 2020 for the season and
    # see autumn 2021 as a drop instead; the candidates of both autumns are judged jointly.
    data = synthetic(start="2020-01-01", end="2021-12-31", seed=108, noise=0.1)
    surge = slice(index_of(data, "2020-09-01"), index_of(data, "2020-12-29") + 1)  # 120 days
    data["counts"][surge] = np.round(data["counts"][surge] * 2.5)
    result = analyse_station(one_series(data))

    (found,) = [a for a in result.anomalies if a.days >= 3]
    assert found.kind == "surge"
    assert abs(np.datetime64(found.start) - np.datetime64("2020-09-01")) <= np.timedelta64(3, "D")
    assert abs(np.datetime64(found.end) - np.datetime64("2020-12-29")) <= np.timedelta64(3, "D")
    assert found.mean_ratio == pytest.approx(2.5, rel=0.08)
    assert periods(result, "level_shift") == []


def test_daily_flags_are_in_the_json():
    data = synthetic(seed=9)
    data["counts"][100:110] = 0
    body = analyse_station(one_series(data)).to_json()
    daily = body["daily"]
    assert len(daily["date"]) == len(daily["count"]) == len(daily["expected"]) == len(
        daily["flag"]) == len(data["dates"])  # fmt: skip
    assert daily["flag"][100:110] == ["outage"] * 10
    assert daily["low"][50] <= daily["expected"][50] <= daily["high"][50]
    assert set(body) >= {"model", "trend", "anomalies", "dtv", "forecast", "daily"}
    assert body["model"]["days_excluded_as_anomalies"] >= 10


# --- DTV and forecast ------------------------------------------------------------------------


def test_dtv_imputes_gaps_and_reports_the_share():
    data = synthetic(seed=21)
    gap = set(range(index_of(data, "2021-07-01"), index_of(data, "2021-07-31") + 1))
    data["counts"][index_of(data, "2021-02-01") : index_of(data, "2021-02-10") + 1] = 0
    result = analyse_station(one_series(data, skip=gap))
    dtv = {d["year"]: d for d in result.dtv}
    year = dtv[2021]
    assert year["days_imputed"] == 31 + 10 and year["days_counted"] == 365 - 41
    assert year["share_imputed"] == pytest.approx(41 / 365, abs=1e-4)
    assert year["complete_year"] is False
    in_2021 = (data["dates"] >= np.datetime64("2021-01-01")) & (
        data["dates"] <= np.datetime64("2021-12-31"))  # fmt: skip
    true_mean = data["truth"][in_2021].mean() * math.exp(0.1**2 / 2)  # lognormal noise mean
    assert year["dtv"] == pytest.approx(true_mean, rel=0.03)
    # counting only the counted days misses July (high) and the outage: biased
    assert dtv[2022]["share_imputed"] == 0.0 and dtv[2022]["complete_year"] is True


def test_forecast_for_future_days_and_weather():
    data = synthetic(seed=13, end="2021-12-31")
    future = synthetic(seed=14, start="2022-01-01", end="2022-03-31")
    days = [
        {"date": str(d), **{n: float(future["weather"][n][i]) for n in WEATHER_FIELDS}}
        for i, d in enumerate(future["dates"])
    ]
    result = analyse_station(one_series(data), forecast=days[::-1])  # order does not matter
    assert [f["date"] for f in result.forecast] == [str(d) for d in future["dates"]]
    expected = np.array([f["expected"] for f in result.forecast])
    assert np.median(np.abs(expected - future["truth"]) / future["truth"]) < 0.05
    assert all(f["low"] < f["expected"] < f["high"] for f in result.forecast)
    inside = np.mean(
        [f["low"] <= c <= f["high"] for f, c in zip(result.forecast, future["counts"], strict=True)]
    )
    assert inside > 0.85
    assert "last fitted year" in result.model["forecast_year_level"]

    bad = [{"date": "2022-01-01", "max_temperature_c": 3.0}]
    with pytest.raises(InputProblem) as err:
        analyse_station(one_series(data), forecast=bad)
    assert err.value.input_name == "forecast"
    assert "2022-01-01" in err.value.problem and "precipitation_mm" in err.value.problem
    with pytest.raises(InputProblem, match="given twice"):
        analyse_station(one_series(data), forecast=[days[0], days[0]])


# --- input ----------------------------------------------------------------------------------


def test_negative_count_is_an_error_naming_station_and_date():
    rows = records(synthetic(end="2019-03-31"))
    rows[40]["count"] = -3
    with pytest.raises(InputProblem) as err:
        daily_series(rows)
    assert err.value.input_name == "counts"
    assert "S1" in err.value.problem and rows[40]["date"] in err.value.problem
    assert "negative" in err.value.problem


def test_exact_duplicates_are_dropped_and_reported():
    rows = records(synthetic(end="2019-03-31"))
    (series,) = daily_series([*rows, dict(rows[5]), dict(rows[6])])
    assert series.counts[5] == rows[5]["count"]
    assert any("2 exact duplicate" in note for note in series.repairs)


def test_contradictory_duplicates_are_an_error_naming_station_and_date():
    rows = records(synthetic(end="2019-03-31"))
    twin = {**rows[7], "count": rows[7]["count"] + 1}
    with pytest.raises(InputProblem) as err:
        daily_series([*rows, twin])
    assert err.value.input_name == "counts"
    assert "S1" in err.value.problem and rows[7]["date"] in err.value.problem
    assert "different counts" in err.value.problem


def test_dates_out_of_order_are_sorted():
    data = synthetic(end="2019-12-31")
    rows = records(data)
    shuffled = [rows[i] for i in np.random.default_rng(1).permutation(len(rows))]
    (ordered,) = daily_series(rows)
    (series,) = daily_series(shuffled)
    assert np.array_equal(series.dates, ordered.dates)
    assert np.array_equal(series.counts, ordered.counts)
    assert any("sorted" in note for note in series.repairs)
    assert not any("sorted" in note for note in ordered.repairs)


def test_directions_are_summed_and_a_missing_direction_makes_the_day_incomplete():
    rows = []
    for day, (a, b) in {"2023-03-01": (10, 20), "2023-03-02": (5, None)}.items():
        rows.append({"station_id": "X", "date": day, "direction": 1, "count": a})
        if b is not None:
            rows.append({"station_id": "X", "date": day, "direction": 2, "count": b})
    (series,) = daily_series(rows)
    assert series.counts.tolist() == [30.0, 5.0]
    assert series.complete.tolist() == [True, False]
    assert any("incomplete" in note for note in series.repairs)


def test_unknown_station_ids_are_an_error():
    rows = records(synthetic(end="2019-02-28"))
    with pytest.raises(InputProblem) as err:
        daily_series(rows, stations=["S1", "Nowhere"])
    assert err.value.input_name == "stations" and "'Nowhere'" in err.value.problem
    assert "S1" in err.value.problem


def test_hourly_utc_counts_make_local_days_and_gaps_make_them_incomplete():
    rows = []
    # 2023-03-26: the spring DST change in Germany, a local day of 23 hours
    start = np.datetime64("2023-03-24T23:00")  # = 2023-03-25 00:00 in Berlin (UTC+1)
    for hour in range(24 + 23 + 24):
        moment = start + np.timedelta64(hour, "h")
        if str(moment).startswith("2023-03-27T05"):  # one hour missing on the 27th
            continue
        rows.append({"thing_id": 4711, "phenomenon_start": f"{moment}:00Z", "result": 10})
    (series,) = daily_series(rows)
    assert [str(d) for d in series.dates] == ["2023-03-25", "2023-03-26", "2023-03-27"]
    assert series.counts.tolist() == [240.0, 230.0, 230.0]
    assert series.complete.tolist() == [True, True, False]
    assert series.resolution == "sub-daily"


def test_the_autumn_dst_day_has_25_hours_and_is_complete():
    start = np.datetime64("2023-10-27T22:00")  # = 2023-10-28 00:00 in Berlin (UTC+2)
    rows = [
        {"station_id": "Z", "datetime": f"{start + np.timedelta64(h, 'h')}:00+00:00",
         "count": 1, "direction": direction}
        for h in range(24 + 25) for direction in (1, 2)
    ]  # fmt: skip
    (series,) = daily_series(rows)
    assert [str(d) for d in series.dates] == ["2023-10-28", "2023-10-29"]
    assert series.counts.tolist() == [48.0, 50.0]
    assert series.complete.tolist() == [True, True]


def test_unknown_state_turns_school_holidays_off_and_says_so():
    data = synthetic(end="2020-12-31")
    (series,) = daily_series(records(data), default_state="XX")
    result = analyse_station(series)
    assert any("unknown federal state 'XX'" in note for note in result.notes)
    assert "school_holiday" not in result.model["features"]
    assert "school_summer_holiday" not in result.model["features"]
    assert result.state is None
    (bavarian,) = daily_series(records(data), default_state="BY")
    assert "school_summer_holiday" in analyse_station(bavarian).model["features"]


def test_bad_parameters_and_too_little_data():
    series = one_series(synthetic(end="2019-12-31"))
    with pytest.raises(InputProblem) as err:
        analyse_station(series, threshold=0.5)
    assert err.value.input_name == "threshold"
    short = one_series(synthetic(end="2019-01-20"))
    with pytest.raises(InputProblem, match="at least 60"):
        analyse_station(short)
    with pytest.raises(InputProblem) as err:
        daily_series([{"station_id": "S", "date": "2020-13-45", "count": 3}])
    assert "2020-13-45" in err.value.problem


# --- calendar -------------------------------------------------------------------------------


def test_bavarian_calendar_2023():
    dates = np.arange(np.datetime64("2023-01-01"), np.datetime64("2024-01-01"))
    cal = calendar_features(dates, "BY")
    names = {str(d): n for d, n in zip(dates, cal.holiday_name, strict=True) if n}
    assert len(names) == 13  # 12 statewide + Mariä Himmelfahrt (Munich is mostly Catholic)
    assert names["2023-08-15"] == "Mariä Himmelfahrt" and names["2023-06-08"] == "Fronleichnam"
    # Fridays after Ascension and Corpus Christi, the Monday before German Unity Day
    assert {"2023-05-19", "2023-06-09", "2023-10-02"} <= {str(d) for d in dates[cal.bridge_day]}
    summer = dates[cal.school_summer]
    assert str(summer[0]) == "2023-07-31" and str(summer[-1]) == "2023-09-11"
    assert cal.school_holiday_known.all() and cal.notes == []
    assert cal.christmas_period[-8:].all() and not cal.christmas_period[-9]


def test_hamburg_calendar_and_unknown_years():
    dates = np.arange(np.datetime64("2023-10-30"), np.datetime64("2023-11-02"))
    cal = calendar_features(dates, "DE-HH")
    assert cal.state == "HH" and cal.public_holiday.tolist() == [False, True, False]
    far = calendar_features(np.array(["2035-07-15"], dtype="datetime64[D]"), "HH")
    assert not far.school_holiday_known[0] and "2035" in far.notes[0]
    assert normalise_state("Bayern") == "BY" and normalise_state("Atlantis") is None


def test_snow_pack_builds_in_cold_and_melts_in_warmth():
    pack = snow_pack_mm(np.array([-5.0, -5, 2, 8]), np.array([0.0, 0, 8, 14]),
                        np.array([10.0, 5, 0, 0]))  # fmt: skip
    assert pack.tolist() == [10.0, 15.0, 0.0, 0.0]
