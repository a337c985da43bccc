"""Evaluation of the most-used corridors on real data: Hamburg's DB Rad+ weeks and Velorouten.

``evaluate_hamburg(data) -> dict`` (registered as evaluator ``cycling-corridors``, so
``cut-twin evaluate cycling-corridors [--data DIR]`` prints it): the top-20 corridors of each
DB Rad+ week and across all weeks (name, length, ride-km, share on the Velorouten), the share
of the top corridors' ride-km on the Velorouten next to the share of all ride-km (the
baseline: how much would lie on them anyway), the heavily used corridors not on them, the
week-to-week stability (see :func:`cut_processes.analysis.cycling_network.rank_stability`)
and the calibration's leave-one-station-out on the demo district (:func:`evaluate_demo`,
against its hidden truth too) and on simulated stations (:func:`simulate_calibration`).
``analyse_hamburg(data)`` returns the corridor objects too (for the map:
``bench/cycling.py --map``); ``report(run)`` turns that into plain values.

``data``: the shared data folder (``../shared/data``), its ``bike`` folder or the
``hamburg_dbrad`` folder; default ``../shared/data`` next to the project. Across all weeks a
segment's volume is its mean weekly rides over all weeks, 0 in weeks it is missing from
(DB Rad+ leaves out segments below its publication threshold; the smallest count published
in these files is 8).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import shapely
from pyproj import Transformer

from cut_processes.analysis import cycling_network as cn

SHARED_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data"
VELOROUTEN_FILE = "hamburg_velorouten.geojson"
DBRAD_FOLDER = "hamburg_dbrad"
SOURCE = (
    "DB Rad+ segment volumes and Velorouten: Behörde für Verkehr und Mobilitätswende Hamburg, "
    "dl-de/by-2-0"
)
TOP_N = 20
DEMO_SEED = 42
BUFFER_M = 20.0
ALL_WEEKS = "all weeks"


@dataclass
class Network:
    """One volume layer: segment ids, LineStrings (EPSG:25832), rides per week."""

    ids: np.ndarray
    lines: np.ndarray
    rides: np.ndarray


def bike_folder(data: Path | str | None) -> Path:
    """The folder holding ``hamburg_dbrad/`` and the Velorouten file."""
    folder = Path(data) if data is not None else SHARED_DATA
    for candidate in (folder / "bike", folder, folder.parent):
        if (candidate / DBRAD_FOLDER).is_dir():
            return candidate
    raise FileNotFoundError(f"no {DBRAD_FOLDER}/ folder in or next to {folder}")


def load_weeks(folder: Path) -> dict[str, Network]:
    """DB Rad+ weeks by ``week_start`` (ISO date)."""
    from shapely.geometry import shape

    from cut_processes.io.dbrad import read_dbrad

    result = read_dbrad(sorted((folder / DBRAD_FOLDER).glob("*.geojson")))
    by_week: dict[str, list[dict]] = {}
    for feat in result.features:
        by_week.setdefault(feat["properties"]["week_start"], []).append(feat)
    weeks = {}
    for week in sorted(by_week):
        feats = by_week[week]
        weeks[week] = Network(
            np.array([f["properties"]["segment_id"] for f in feats]),
            np.array([shape(f["geometry"]) for f in feats], dtype=object),
            np.array([f["properties"]["rides"] for f in feats], dtype=float),
        )
    return weeks


def across_weeks(weeks: dict[str, Network]) -> Network:
    """Every segment of any week with its mean weekly rides (0 where a week lacks it)."""
    ids = np.concatenate([w.ids for w in weeks.values()])
    lines = np.concatenate([w.lines for w in weeks.values()])
    rides = np.concatenate([w.rides for w in weeks.values()])
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    mean = np.bincount(inverse, rides, minlength=len(unique)) / len(weeks)
    return Network(unique, lines[first], mean)


def load_velorouten(folder: Path) -> tuple[np.ndarray, list[str]]:
    """Veloroute lines (EPSG:25832) and their names (``Veloroute <routennummer>``)."""
    document = json.loads((folder / VELOROUTEN_FILE).read_text(encoding="utf-8"))
    geoms = shapely.from_geojson([json.dumps(f["geometry"]) for f in document["features"]])
    to_utm = Transformer.from_crs("OGC:CRS84", "EPSG:25832", always_xy=True)
    geoms = shapely.transform(geoms, lambda xy: np.column_stack(to_utm.transform(*xy.T)))
    names = [f"Veloroute {f['properties'].get('routennummer')}" for f in document["features"]]
    return geoms, names


def _share_of_network_on(network: Network, official: np.ndarray) -> dict[str, float]:
    """Share of all segments' length and ride-km within ``BUFFER_M`` of the official lines."""
    on, _ = cn.length_near(network.lines, official, buffer_m=BUFFER_M)
    length = shapely.length(network.lines)
    return {
        "length_share": float(on.sum() / length.sum()),
        "ride_km_share": float((on * network.rides).sum() / (length * network.rides).sum()),
    }


def _lonlat(points: np.ndarray) -> list[list[float]]:
    to_wgs = Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    xy = shapely.get_coordinates(points)
    lon, lat = to_wgs.transform(xy[:, 0], xy[:, 1])
    return [[round(float(a), 5), round(float(b), 5)] for a, b in zip(lon, lat, strict=True)]


def _rows(corridors: list[cn.Corridor], overlap: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for c, o in zip(corridors, overlap["corridors"], strict=True):
        ends = (
            shapely.get_point(c.geometry, [0, -1])
            if c.geometry.geom_type == "LineString"
            else shapely.points(shapely.get_coordinates(c.geometry)[[0, -1]])
        )
        rows.append(
            {
                "rank": c.rank,
                "name": ", ".join(o["official_names"]) or None,
                "length_m": round(c.length_m),
                "ride_km": round(c.ride_km, 1),
                "rides_mean": round(c.volume_mean, 1),
                "rides_min": c.volume_min,
                "rides_max": c.volume_max,
                "share_on_velorouten": round(o["share_on_official"], 3),
                "velorouten": o["official_names"],
                "ends_lonlat": _lonlat(ends),
            }
        )
    return rows


def _top(network: Network, official: np.ndarray, names: list[str], top_n: int) -> dict:
    corridors = cn.build_corridors(network.lines, network.rides, top_n=top_n)
    overlap = cn.official_overlap(corridors, official, official_names=names, buffer_m=BUFFER_M)
    return {"corridors": corridors, "overlap": overlap}


def analyse_hamburg(data: Path | str | None = None, *, top_n: int = TOP_N) -> dict[str, Any]:
    """Corridors per week and across weeks with their Velorouten overlap, and the stability.

    :returns: ``weeks`` (week -> Network), ``all`` (the across-weeks Network), ``velorouten``
        (lines, names), ``results`` (label -> corridors and overlap), ``stability``.
    """
    folder = bike_folder(data)
    weeks = load_weeks(folder)
    velo, velo_names = load_velorouten(folder)
    union = across_weeks(weeks)
    results = {w: _top(net, velo, velo_names, top_n) for w, net in weeks.items()}
    results[ALL_WEEKS] = _top(union, velo, velo_names, top_n)
    lengths = dict(zip(union.ids.tolist(), shapely.length(union.lines).tolist(), strict=True))
    top_sets = {
        w: {weeks[w].ids[s] for c in results[w]["corridors"] for s in c.segments} for w in weeks
    }
    fixed = [set(union.ids[c.segments].tolist()) for c in results[ALL_WEEKS]["corridors"]]
    stability = cn.rank_stability(
        {
            w: dict(zip(net.ids.tolist(), net.rides.tolist(), strict=True))
            for w, net in weeks.items()
        },
        top_sets=top_sets,
        corridors=fixed,
        segment_lengths=lengths,
    )
    return {
        "weeks": weeks,
        "all": union,
        "velorouten": (velo, velo_names),
        "top_n": top_n,
        "results": results,
        "stability": stability,
        "top_sets": top_sets,
    }


def evaluate_hamburg(data: Path | str | None = None, *, top_n: int = TOP_N) -> dict[str, Any]:
    """The Hamburg quality report as plain values (see the module docstring), with the
    calibration checked on the demo district (generated into a temporary folder, seed 42)."""
    import tempfile

    from cut_processes.demo import generate_district

    out = report(analyse_hamburg(data, top_n=top_n))
    with tempfile.TemporaryDirectory(prefix="cut-demo-") as tmp:
        generate_district(Path(tmp) / "district", DEMO_SEED)
        out["calibration_demo"] = evaluate_demo(Path(tmp) / "district")
    return out


def report(run: dict[str, Any]) -> dict[str, Any]:
    """Plain values (JSON) of an :func:`analyse_hamburg` run."""
    velo = run["velorouten"][0]
    top_n = run["top_n"]
    networks = {**run["weeks"], ALL_WEEKS: run["all"]}
    report: dict[str, Any] = {
        "source": SOURCE,
        "parameters": {
            "top_n": top_n,
            "buffer_m": BUFFER_M,
            "volume": "rides per week",
            "across_weeks": "mean weekly rides, 0 where a week lacks the segment",
            "corridors": "build_corridors defaults: min_volume = length-weighted median, "
            "snap 1 m, max_deflection_deg 40 at junctions, max_bend_deg 120 at plain "
            "vertices, folds cut below straightness 0.5 over +-100 m",
        },
    }
    per_label = {}
    for label, res in run["results"].items():
        net, overlap = networks[label], res["overlap"]
        baseline = _share_of_network_on(net, velo)
        per_label[label] = {
            "segments": len(net.ids),
            "network_ride_km": round(float((net.rides * shapely.length(net.lines)).sum()) / 1000),
            "top": _rows(res["corridors"], overlap),
            "top_ride_km_share_of_network": round(
                sum(c.ride_km for c in res["corridors"])
                * 1000
                / float((net.rides * shapely.length(net.lines)).sum()),
                3,
            ),
            "top_ride_km_share_on_velorouten": round(overlap["ride_km_share_on_official"], 3),
            "top_length_share_on_velorouten": round(overlap["length_share_on_official"], 3),
            "network_ride_km_share_on_velorouten": round(baseline["ride_km_share"], 3),
            "network_length_share_on_velorouten": round(baseline["length_share"], 3),
            "not_on_velorouten": [r["rank"] for r in overlap["not_on_official"]],
        }
    report["weeks"] = {w: per_label[w] for w in run["weeks"]}
    report[ALL_WEEKS.replace(" ", "_")] = per_label[ALL_WEEKS]
    stab = run["stability"]
    all_top = run["results"][ALL_WEEKS]["corridors"]
    report["stability"] = {
        "pairs": [
            {k: (round(v, 3) if isinstance(v, float) else v) for k, v in p.items()}
            for p in stab["pairs"]
        ],
        "mean_segment_spearman": round(stab["mean_segment_spearman"], 3),
        "mean_top_jaccard": round(stab["mean_top_jaccard"], 3),
        "mean_corridor_spearman": round(stab["mean_corridor_spearman"], 3),
        "weeks_in_weekly_top": _weeks_in_weekly_top(run, all_top),
    }
    report["calibration_check"] = simulate_calibration(run["all"].rides, repeats=100)
    return report


def simulate_calibration(
    rides: np.ndarray,
    *,
    n_stations: int = 24,
    noise_log_sd: float = 0.3,
    factors: tuple[float, ...] = (1.5, 3.0, 6.0),
    repeats: int = 200,
    seed: int = 7,
) -> dict[str, Any]:
    """Leave-one-station-out of :func:`~cycling_network.calibrate` with simulated stations.

    No Hamburg station counts cyclists on a DB Rad+ segment, so the calibration is checked
    where the truth is known: ``n_stations`` sites drawn on segments with at least 8 rides,
    three road classes (volume terciles of the drawn sites) with true ``factors``, counted
    cyclists = factor x true rides per day x log-normal site noise (``noise_log_sd``), and the
    crowdsourced rides the calibration sees drawn as Poisson around the true rides. Reports the
    median absolute % error and the coverage of the 80 % interval over ``repeats`` draws.
    """
    rng = np.random.default_rng(seed)
    candidates = np.flatnonzero(rides >= 8)
    errors, inside = [], []
    for _ in range(repeats):
        sites = rng.choice(candidates, n_stations, replace=False)
        true = rides[sites]
        cls = np.searchsorted(np.quantile(true, [1 / 3, 2 / 3]), true, side="right")
        counted = np.asarray(factors)[cls] * true / 7 * rng.lognormal(0, noise_log_sd, len(true))
        seen = rng.poisson(true).astype(float)
        seen[seen == 0] = 1.0
        classes = [f"class {c}" for c in cls]
        cal = cn.calibrate(
            seen, [(i, i, counted[i]) for i in range(len(sites))], road_class=classes
        )
        loso = cal.leave_one_station_out()["stations"]
        errors += [abs(r["error_pct"]) for r in loso]
        inside += [r["inside_interval"] for r in loso]
    return {
        "simulated": True,
        "stations": n_stations,
        "repeats": repeats,
        "noise_log_sd": noise_log_sd,
        "true_factors": list(factors),
        "median_abs_error_pct": round(float(np.median(errors)), 1),
        "interval_coverage": round(float(np.mean(inside)), 3),
        "nominal_interval": 0.8,
    }


#: Compass words of counting-station directions -> bearing of the counted street (degrees).
COMPASS = cn.COMPASS


def evaluate_demo(district: Path | str) -> dict[str, Any]:
    """Leave-one-station-out and the estimate against the hidden truth, on the demo district.

    ``district``: a generated demo district folder (``cut-twin demo``; ``district.gpkg`` with
    ``bike_segments``, ``bike_stations``, ``bike_counts`` and the hidden
    ``bike_segments_truth``). Per crowdsourced week: stations matched with their counted
    direction, counted cyclists per day = the mean over the week of both directions' daily
    counts, :func:`~cycling_network.calibrate` with the segments' road classes; then
    leave-one-station-out at the stations, and every segment's estimate and 80 % interval
    against its true mean daily cyclists of the week (known only because it is generated).
    """
    import fiona
    from shapely.geometry import shape

    gpkg = Path(district) / "district.gpkg"
    with fiona.open(gpkg, layer="bike_segments") as src:
        segments = [(f["properties"], shape(f["geometry"])) for f in src]
    with fiona.open(gpkg, layer="bike_segments_truth") as src:
        truth = {f["properties"]["id"]: f["properties"]["daily_cyclists"] for f in src}
    with fiona.open(gpkg, layer="bike_stations") as src:
        stations = [(f["properties"], shape(f["geometry"])) for f in src]
    daily: dict[tuple[str, str], float] = {}
    with fiona.open(gpkg, layer="bike_counts") as src:
        for f in src:
            key = (f["properties"]["station_id"], f["properties"]["date"])
            daily[key] = daily.get(key, 0.0) + float(f["properties"]["count"])
    points = np.array([g for _, g in stations], dtype=object)
    bearings = [COMPASS.get(str(p.get("direction_1") or "").lower(), np.nan) for p, _ in stations]
    weeks: dict[str, list[int]] = {}
    for i, (props, _) in enumerate(segments):
        weeks.setdefault(props["week_start"], []).append(i)
    rows, loso_rows, out_weeks = [], [], {}
    for week, idx in sorted(weeks.items()):
        props = [segments[i][0] for i in idx]
        lines = np.array([segments[i][1] for i in idx], dtype=object)
        rides = np.array([p["rides"] for p in props], dtype=float)
        match, _ = cn.match_stations(points, lines, bearings_deg=bearings)
        start, end = np.datetime64(week), np.datetime64(props[0]["week_end"])
        days = [str(d) for d in np.arange(start, end + np.timedelta64(1, "D"))]
        counted = []
        for (sp, _), seg in zip(stations, match, strict=True):
            values = [daily[(sp["id"], d)] for d in days if (sp["id"], d) in daily]
            counted.append((sp["id"], int(seg), float(np.mean(values)) if values else 0.0))
        cal = cn.calibrate(rides, counted, road_class=[p["road_class"] for p in props])
        loso = cal.leave_one_station_out()
        true = np.array([truth[p["id"]] for p in props])
        err = 100 * (cal.cyclists_estimated - true) / true
        inside = (cal.cyclists_low <= true) & (true <= cal.cyclists_high)
        rows += list(zip(np.abs(err), inside, strict=True))
        loso_rows += loso["stations"]
        out_weeks[week] = {
            "stations_used": len(cal.stations),
            "factors_by_class": {k: round(v, 2) for k, v in cal.factors_by_class.items()},
            "global_factor": round(cal.global_factor, 2) if cal.global_factor else None,
            "loso_median_abs_error_pct": round(loso["summary"]["median_abs_error_pct"], 1),
            "loso_interval_coverage": round(loso["summary"]["interval_coverage"], 3),
            "segments_median_abs_error_pct": round(float(np.median(np.abs(err))), 1),
            "segments_interval_coverage": round(float(np.mean(inside)), 3),
        }
    seg_err = np.array([r[0] for r in rows])
    return {
        "generated": True,
        "weeks": out_weeks,
        "loso_stations": [
            {k: (round(v, 1) if isinstance(v, float) else v) for k, v in r.items()}
            for r in loso_rows
        ],
        "loso_median_abs_error_pct": round(
            float(np.median([abs(r["error_pct"]) for r in loso_rows])), 1
        ),
        "loso_interval_coverage": round(
            float(np.mean([r["inside_interval"] for r in loso_rows])), 3
        ),
        "segments_median_abs_error_pct": round(float(np.median(seg_err)), 1),
        "segments_interval_coverage": round(float(np.mean([r[1] for r in rows])), 3),
        "nominal_interval": 0.8,
    }


def _weeks_in_weekly_top(run: dict[str, Any], corridors: list[cn.Corridor]) -> list[int]:
    """Per across-weeks corridor: in how many weeks at least half its length lies on segments
    of that week's top corridors."""
    union: Network = run["all"]
    length = shapely.length(union.lines)
    counts = []
    for c in corridors:
        ids = union.ids[c.segments]
        total = length[c.segments].sum()
        counts.append(
            sum(
                length[c.segments][np.isin(ids, list(top))].sum() >= 0.5 * total
                for top in run["top_sets"].values()
            )
        )
    return [int(k) for k in counts]


def _register() -> None:
    from cut_processes.ml.training import register_evaluator

    register_evaluator("cycling-corridors")(lambda data: evaluate_hamburg(data))


_register()
