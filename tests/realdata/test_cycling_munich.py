"""The counter analysis' quality bars on Munich's six counters, through `cut-twin evaluate`.

Fit on 2017-2022, test on 2023, against two baselines measured in the same run (the same
weekday's mean and the month x weekday mean of the training years); and the anomaly
detector over 2017-2023 on the two periods the stations file names (Arnulfstraße:
construction works from early 2021; Bad-Kreuther-Straße: loop widened in April 2020).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from cut_processes.analysis.cycling_counts import analyse_station, daily_series
from cut_processes.cli import main
from cut_processes.io.counters import read_munich_counts

pytestmark = pytest.mark.realdata

STATIONS = {"Arnulf", "Erhardt", "Hirsch", "Kreuther", "Margareten", "Olympia"}


def _bike(shared: Path) -> Path:
    bike = shared / "bike"
    if not (bike / "munich_counters_daily_2017_2023.csv").is_file():
        reason = f"Munich counter data not found in {bike} (see ../shared/data/README.md)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return bike


@pytest.fixture(scope="module")
def metrics(io_shared_data):
    bike = _bike(io_shared_data)
    result = CliRunner().invoke(main, ["evaluate", "cycling-counters", "--data", str(bike)])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_every_station_is_reported_with_both_baselines(metrics):
    assert {s["station"] for s in metrics["stations"]} == STATIONS
    for station in metrics["stations"]:
        for days in ("all_days", "unflagged_days"):
            assert set(station["metrics"][days]) == {"model", "weekday_mean",
                                                     "month_weekday_mean"}  # fmt: skip
        # flagged days come with their periods and reasons
        if station["flagged_days_2023"]:
            assert station["flagged_periods_2023"]
            assert all(p["reason"] for p in station["flagged_periods_2023"])
        # on the days it trusts, the model beats the better baseline at every station
        unflagged = station["metrics"]["unflagged_days"]
        better = min(unflagged["weekday_mean"]["mape_percent"],
                     unflagged["month_weekday_mean"]["mape_percent"])  # fmt: skip
        assert unflagged["model"]["mape_percent"] < better
        assert unflagged["model"]["r2"] > 0.6
        assert 0.85 <= station["interval_coverage_unflagged"] <= 0.995


def test_median_mape_on_unflagged_2023_days_is_30_percent_below_the_better_baseline(metrics):
    median = metrics["median_mape_unflagged_percent"]
    better = min(median["weekday_mean"], median["month_weekday_mean"])
    assert median["model"] <= 0.7 * better
    assert metrics["mape_reduction_vs_better_baseline"] >= 0.30
    assert metrics["bar_mape_met"] is True


def test_margareten_outage_in_2023_is_flagged_and_explained(metrics):
    (station,) = [s for s in metrics["stations"] if s["station"] == "Margareten"]
    assert station["zero_days_2023"] > 40
    outages = [p for p in station["flagged_periods_2023"] if p["kind"] == "outage"]
    assert sum(p["days"] for p in outages) >= station["zero_days_2023"]
    assert any("zero counts" in p["reason"] for p in outages)


def test_arnulf_construction_from_2021_is_found(metrics):
    arnulf = metrics["detection"]["Arnulf"]
    assert arnulf["found"] is True
    assert arnulf["share_of_2021_days_flagged"] >= 0.6
    (longest,) = sorted(arnulf["periods_2021"], key=lambda p: -p["days"])[:1]
    assert "2021-01-01" <= longest["start"] <= "2021-02-28"
    assert longest["days"] >= 200 and longest["mean_ratio"] < 0.2


def test_kreuther_april_2020_change_is_found(metrics):
    kreuther = metrics["detection"]["Kreuther"]
    assert kreuther["found"] is True
    (shift,) = kreuther["level_shifts"]
    assert "2020-03-15" <= shift["start"] <= "2020-04-30"
    assert 1.7 <= shift["mean_ratio"] <= 3.5  # the loop about doubled in width


def test_few_other_station_days_are_flagged(metrics):
    detection = metrics["detection"]
    # days with counts above zero: false alarms (and real drops) must stay under 2 %
    assert detection["other_flagged_share_excluding_zero_counts"] < 0.02
    # drops and surges only (outages are counter faults, not false alarms)
    assert detection["other_flagged_share_not_outage"] < 0.02
    # over all days, the found outages (zero counts) count too
    assert detection["other_flagged_share"] < 0.025


@pytest.mark.parametrize(
    "first, last", [("2019-01-01", "2020-12-31"), ("2019-07-01", "2021-06-30")]
)
def test_kreuther_change_is_found_on_two_years_of_counts(io_shared_data, first, last):
    # On two years the seasonal terms take up part of the step when it is judged on the
    # residuals of the model without levels; the joint step estimate finds it.
    bike = _bike(io_shared_data)
    read = read_munich_counts([bike / "munich_counters_daily_2017_2023.csv"])
    records = [
        f["properties"]
        for f in read.features
        if f["properties"]["station_id"] == "Kreuther"
        and first <= str(f["properties"]["date"])[:10] <= last
    ]
    (series,) = daily_series(records, default_state="BY")
    result = analyse_station(series)
    (shift,) = [a for a in result.anomalies if a.kind == "level_shift"]
    assert "2020-03-15" <= shift.start <= "2020-04-30"
    assert 1.7 <= shift.mean_ratio <= 3.5
    # the weeks around the change are not flagged as drops (the lockdown week may be)
    assert sum(a.days for a in result.anomalies if a.kind == "drop") <= 7
