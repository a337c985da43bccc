"""The generated cycling data of the demo district: segments, routes, stations, counts, truth."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import fiona
import holidays
import numpy as np
import pytest
from shapely import box, line_merge, unary_union
from shapely.geometry import shape

from cut_processes.demo.cycling import (
    ANOMALIES,
    COUNT_END,
    COUNT_START,
    SEGMENT_FIELDS,
    STATION_FIELDS,
    WEEKS,
    Network,
    build_cycling,
)
from cut_processes.demo.layout import build_blocks
from cut_processes.demo.streets import build_streets
from cut_processes.demo.terrain import Terrain
from cut_processes.io.counters import COUNT_FIELDS
from cut_processes.io.dbrad import FIELDS as DBRAD_FIELDS

SEED = 42
LABEL = f"generated: cut-twin demo (seed={SEED})"
BOX = box(561000, 5933000, 563500, 5935000)
N_DAYS = (COUNT_END - COUNT_START).days + 1


def read(folder: Path, layer: str) -> list[tuple[dict, object]]:
    with fiona.open(folder / "district.gpkg", layer=layer) as src:
        return [
            (dict(f.properties), shape(f.geometry) if f.geometry is not None else None) for f in src
        ]


def schema(folder: Path, layer: str) -> dict:
    with fiona.open(folder / "district.gpkg", layer=layer) as src:
        return dict(src.schema["properties"]), src.schema["geometry"]


@pytest.fixture(scope="module")
def segments(demo_dir: Path):
    return read(demo_dir, "bike_segments")


@pytest.fixture(scope="module")
def stations(demo_dir: Path):
    return read(demo_dir, "bike_stations")


@pytest.fixture(scope="module")
def counts(demo_dir: Path) -> list[dict]:
    return [p for p, _ in read(demo_dir, "bike_counts")]


@pytest.fixture(scope="module")
def segments_truth(demo_dir: Path) -> dict[str, dict]:
    return {p["id"]: p for p, _ in read(demo_dir, "bike_segments_truth")}


@pytest.fixture(scope="module")
def truth(demo_dir: Path) -> dict[tuple[str, str], dict]:
    return {(p["station_id"], p["date"]): p for p, _ in read(demo_dir, "bike_truth")}


@pytest.fixture(scope="module")
def daily(counts) -> dict[str, dict[str, int]]:
    """Total count (both directions) per station and day."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c in counts:
        out[c["station_id"]][c["date"]] += c["count"]
    return out


def district_streets(seed: int):
    rngs = np.random.default_rng(seed).spawn(11)
    terrain = Terrain.draw(rngs[0])
    grid = build_streets(terrain, rngs[1])
    _, added = build_blocks(grid, terrain.hang_line, rngs[2])
    return grid.streets + added, rngs[10]


def test_layers_have_the_importers_fields_and_are_marked_generated(demo_dir: Path):
    fields, geometry = schema(demo_dir, "bike_segments")
    assert geometry == "LineString"
    assert list(fields) == list(SEGMENT_FIELDS)
    assert set(DBRAD_FIELDS) <= set(fields)
    fields, geometry = schema(demo_dir, "bike_counts")
    assert list(fields) == list(COUNT_FIELDS)
    fields, geometry = schema(demo_dir, "bike_stations")
    assert geometry == "Point" and list(fields) == list(STATION_FIELDS)
    assert schema(demo_dir, "bike_routes")[1] == "LineString"
    for layer in ("bike_segments", "bike_routes", "bike_stations", "bike_counts"):
        assert {p["source"] for p, _ in read(demo_dir, layer)} == {LABEL}, layer


def test_manifest_lists_the_cycling_layers_and_their_hidden_truth(demo_dir: Path, segments):
    manifest = json.loads((demo_dir / "demo.json").read_text(encoding="utf-8"))
    assert manifest["version"] >= 5
    layers = manifest["layers"]["district.gpkg"]
    for layer in ("bike_segments", "bike_segments_truth", "bike_routes", "bike_stations",
                  "bike_counts", "bike_truth"):  # fmt: skip
        assert layer in layers
    assert "district.gpkg#bike_segments_truth" in manifest["hidden_truth"]
    assert "district.gpkg#bike_truth" in manifest["hidden_truth"]
    counts = manifest["counts"]
    assert counts["bike_segment_weeks"] == len(segments)
    assert counts["bike_segments"] * len(WEEKS) == len(segments)
    assert counts["bike_counts"] == counts["bike_stations"] * N_DAYS * 2

    from cut_processes.io.store import demo_layers

    served = demo_layers(demo_dir)
    assert {"bike_segments", "bike_routes", "bike_stations", "bike_counts"} <= set(served)
    assert not {"bike_segments_truth", "bike_truth"} & set(served)


def test_segments_split_the_street_network(demo_dir: Path, segments):
    streets = {p["name"]: (p["road_class"], g) for p, g in read(demo_dir, "streets")}
    weeks = {(p["week_start"], p["week_end"]) for p, _ in segments}
    assert weeks == {(w.isoformat(), date.fromordinal(w.toordinal() + 6).isoformat())
                     for w in WEEKS}  # fmt: skip
    by_segment: dict[str, list] = defaultdict(list)
    for p, g in segments:
        assert p["id"] == f"{p['segment_id']}:{p['week_start']}"
        assert re.fullmatch(r"[0-9a-f]{16}", p["segment_id"])
        assert p["gml_id"] is None and p["rides"] >= 0 and 8 < p["speed_kmh"] < 30
        assert g.geom_type == "LineString" and BOX.covers(g)
        road_class, street = streets[p["name"]]
        assert p["road_class"] == road_class
        assert street.buffer(8.0).covers(g), "a segment follows its street"
        by_segment[p["segment_id"]].append((p, g))
    assert all(len(v) == len(WEEKS) for v in by_segment.values())
    geoms = [v[0][1] for v in by_segment.values()]
    assert 300 <= len(geoms) <= 600
    lengths = np.array([g.length for g in geoms])
    assert lengths.max() <= 250.5 and 100 <= np.median(lengths) <= 250
    total = sum(g.length for _, g in streets.values())
    assert lengths.sum() == pytest.approx(total, rel=0.02), "the segments cover the streets"
    # One connected network: every segment end is reachable from any other.
    nodes: dict[tuple, set] = defaultdict(set)
    for g in geoms:
        a, b = tuple(g.coords[0]), tuple(g.coords[-1])
        nodes[a].add(b)
        nodes[b].add(a)
    start = next(iter(nodes))
    seen, todo = {start}, [start]
    while todo:
        for other in nodes[todo.pop()]:
            if other not in seen:
                seen.add(other)
                todo.append(other)
    assert len(seen) == len(nodes)


def test_stations_stand_beside_segments(stations, segments, truth):
    assert 6 <= len(stations) <= 8
    lines = {p["segment_id"]: g for p, g in segments}
    on = {sid: t["segment_id"] for (sid, _), t in truth.items()}
    for p, point in stations:
        assert point.geom_type == "Point" and BOX.contains(point)
        assert p["federal_state"] == "HH"
        assert re.fullmatch(r"\S.* \d+, (Nord|Süd|Ost|West|Nordost|Nordwest|Südost|Südwest)seite",
                            p["name"])  # fmt: skip
        assert p["direction_1"] and p["direction_2"] and p["direction_1"] != p["direction_2"]
        nearest = min(lines, key=lambda sid: lines[sid].distance(point))
        assert nearest == on[p["id"]], "the truth names the segment the station stands on"
        assert 1.0 <= lines[nearest].distance(point) <= 10.0
    notes = {p["id"]: p["notes"] for p, _ in stations}
    drop = next(s for s, *_, kind, _ in ANOMALIES if kind == "drop")
    shift = next(s for s, *_, kind, _ in ANOMALIES if kind == "level_shift")
    assert "Baustelle" in notes[drop] and "Zählschleife" in notes[shift]
    classes = {next(q["road_class"] for q, _ in segments if q["segment_id"] == on[p["id"]])
               for p, _ in stations}  # fmt: skip
    assert len(classes) >= 3, "stations on several road classes"


def test_counts_cover_two_years_two_directions_with_weather(counts, stations):
    names = {p["id"]: (p["direction_1"], p["direction_2"]) for p, _ in stations}
    assert len(counts) == len(stations) * N_DAYS * 2
    assert len({c["id"] for c in counts}) == len(counts)
    weather: dict[str, tuple] = {}
    for c in counts:
        assert c["id"] == f"{c['station_id']}:{c['date']}:{c['direction']}"
        assert c["direction"] in (1, 2)
        assert c["direction_name"] == names[c["station_id"]][c["direction"] - 1]
        assert isinstance(c["count"], int) and c["count"] >= 0
        day = tuple(c[k] for k in ("min_temperature_c", "max_temperature_c", "precipitation_mm",
                                    "cloud_cover_percent", "sunshine_hours"))  # fmt: skip
        assert None not in day
        assert weather.setdefault(c["date"], day) == day, "one weather series for all stations"
        tmin, tmax, rain, cloud, sun = day
        assert -25 < tmin <= tmax < 40 and rain >= 0 and 0 <= cloud <= 100 and 0 <= sun <= 17
    assert min(weather) == COUNT_START.isoformat() and max(weather) == COUNT_END.isoformat()
    rain = np.array([w[2] for w in weather.values()])
    assert 500 < rain.sum() / 2 < 1000 and 0.3 < (rain > 0).mean() < 0.7


def test_counts_follow_calendar_and_weather(counts, daily, truth):
    weather = {c["date"]: (c["precipitation_mm"], c["max_temperature_c"]) for c in counts}
    clean = {s: {d: n for d, n in days.items() if truth[(s, d)]["anomaly"] is None}
             for s, days in daily.items()}  # fmt: skip
    public = holidays.Germany(subdiv="HH", years=[COUNT_START.year, COUNT_END.year])
    commuter_stations = 0
    for station, days in clean.items():
        dates = {d: date.fromisoformat(d) for d in days}
        weekday = [n for d, n in days.items() if dates[d].weekday() < 5
                   and dates[d] not in public]  # fmt: skip
        weekend = [n for d, n in days.items() if dates[d].weekday() >= 5]
        holiday = [n for d, n in days.items() if dates[d] in public]
        july = [n for d, n in days.items() if dates[d].month == 7]
        january = [n for d, n in days.items() if dates[d].month == 1]
        wet = [n for d, n in days.items() if weather[d][0] >= 5 and 3 <= dates[d].month <= 10]
        dry = [n for d, n in days.items() if weather[d][0] == 0 and 3 <= dates[d].month <= 10]
        assert np.mean(july) > 1.4 * np.mean(january), station
        assert np.mean(wet) < 0.85 * np.mean(dry), station
        if np.mean(weekday) > 1.15 * np.mean(weekend):
            commuter_stations += 1
            assert np.mean(holiday) < 0.85 * np.mean(weekday), station
    assert commuter_stations >= 5


def test_station_counts_match_the_truth_of_their_segment(daily, truth, segments_truth):
    for station, days in daily.items():
        rows = [truth[(station, d)] for d in sorted(days)]
        assert len(rows) == N_DAYS
        segment = rows[0]["segment_id"]
        for week in WEEKS:
            k = (week - COUNT_START).days
            expected = np.mean([r["expected_cyclists"] for r in rows[k : k + 7]])
            target = segments_truth[f"{segment}:{week.isoformat()}"]["daily_cyclists"]
            assert expected == pytest.approx(target, rel=1e-3, abs=0.02)
        clean = [(days[r["date"]], r["expected_cyclists"]) for r in rows if r["anomaly"] is None]
        observed, expected = np.array(clean, dtype=float).T
        assert observed.sum() / expected.sum() == pytest.approx(1.0, abs=0.03)


def test_rides_follow_the_true_volumes(segments, segments_truth):
    rides = np.array([p["rides"] for p, _ in segments], dtype=float)
    rows = [segments_truth[p["id"]] for p, _ in segments]
    true = np.array([r["daily_cyclists"] for r in rows])
    share = np.array([r["app_share"] for r in rows])
    assert np.corrcoef(np.log1p(rides), np.log1p(true))[0, 1] > 0.9
    assert share.min() > 0.02 and share.max() < 0.08
    assert 0.03 < np.median(share) < 0.06
    by_class = defaultdict(list)
    for (p, _), r in zip(segments, rows, strict=True):
        by_class[p["road_class"]].append(r["app_share"])
    assert np.mean(by_class["residential"]) > 1.2 * np.mean(by_class["primary"])
    weeks = defaultdict(list)
    for (p, _), r in zip(segments, rows, strict=True):
        weeks[p["week_start"]].append(r["app_share"])
    means = [np.mean(v) for v in weeks.values()]
    assert max(means) > 1.1 * min(means), "the share varies with the week's weather"
    observed = rides.sum() / (7 * true * share).sum()
    assert observed == pytest.approx(1.0, abs=0.03)


def test_axes_are_continuous_heavy_corridors_and_routes_follow_two(demo_dir, segments,
                                                                   segments_truth):  # fmt: skip
    first = [
        (p, g, segments_truth[p["id"]]) for p, g in segments if p["week_start"] == "2025-06-16"
    ]
    dtv = np.array([t["dtv"] for _, _, t in first])
    axes: dict[str, list] = defaultdict(list)
    for _p, g, t in first:
        for key in t["axes"].split(",") if t["axes"] else []:
            axes[key].append((g, t))
    assert set(axes) == {"A", "B", "C", "D", "E"}
    for key, members in axes.items():
        merged = unary_union([g for g, _ in members])
        assert merged.length > 1000, key
        assert line_merge(merged).geom_type == "LineString", f"axis {key} is one chain"
    for key in ("A", "B"):
        assert np.median([t["dtv"] for _, t in axes[key]]) > 4 * np.median(dtv), key
    routes = read(demo_dir, "bike_routes")
    assert {p["routennummer"] for p, _ in routes} == {"1", "1a"}
    assert {p["status"] for p, _ in routes} == {"Hauptroute", "Nebenroute"}
    official = unary_union([g for _, g in routes])
    for key, members in axes.items():
        covered = sum(g.length for g, _ in members if official.buffer(0.5).covers(g))
        share = covered / sum(g.length for g, _ in members)
        if key in ("A", "E"):
            assert share > 0.99, key
            assert {t["official_route"] for _, t in members} <= {"1", "1a", "1,1a"}
        elif key == "B":
            assert share < 0.2, "the heavy north-south corridor is not on the network"


def test_planted_anomalies_are_in_the_counts_and_the_truth(daily, truth):
    kinds = defaultdict(set)
    for (station, _), t in truth.items():
        if t["anomaly"] is not None:
            kinds[t["anomaly"]].add(station)
    assert {k: len(v) for k, v in kinds.items()} == {
        "outage": 1, "drop": 1, "level_shift": 1, "surge": 1,
    }  # fmt: skip
    for station, first, last, kind, factor in ANOMALIES:
        days = [
            d for (s, d), t in truth.items()
            if s == station and first.isoformat() <= d <= last.isoformat()
        ]  # fmt: skip
        assert len(days) == (last - first).days + 1
        assert all(truth[(station, d)]["anomaly"] == kind for d in days)
        observed = np.array([daily[station][d] for d in days], dtype=float)
        expected = np.array([truth[(station, d)]["expected_cyclists"] for d in days])
        if factor is None:  # a stuck counter repeats the day before the run
            before = date.fromordinal(first.toordinal() - 1).isoformat()
            assert set(observed) == {daily[station][before]}
            assert all(truth[(station, d)]["factor"] is None for d in days)
        elif factor == 0:
            assert observed.sum() == 0
        else:
            rel = 0.1 if len(days) > 30 else 0.35
            assert observed.sum() / expected.sum() == pytest.approx(factor, rel=rel)
            assert all(truth[(station, d)]["factor"] == factor for d in days)
    untouched = [t for t in truth.values() if t["anomaly"] is None]
    assert all(t["factor"] == 1.0 for t in untouched)
    for week in WEEKS:  # the crowdsourced weeks are free of anomalies
        for station in daily:
            for k in range(7):
                d = date.fromordinal(week.toordinal() + k).isoformat()
                assert truth[(station, d)]["anomaly"] is None


def test_same_seed_same_data_other_seed_other_data():
    streets, rng = district_streets(SEED)
    one = build_cycling(streets, rng)
    streets, rng = district_streets(SEED)
    two = build_cycling(streets, rng)

    def dump(c):
        return (
            [(f["geometry"].wkb, f["properties"]) for f in c.segment_weeks],
            [(f["geometry"].wkb, f["properties"]) for f in c.routes],
            [(s.id, s.geometry.wkb, s.name, s.directions, s.notes) for s in c.stations],
            [f["properties"] for f in c.counts],
            c.segments_truth,
            c.counts_truth,
        )

    assert dump(one) == dump(two)
    streets, rng = district_streets(7)
    other = build_cycling(streets, rng)
    assert [f["properties"]["count"] for f in other.counts] != [
        f["properties"]["count"] for f in one.counts
    ]
    assert len(Network(other.segments).nodes) > 100
