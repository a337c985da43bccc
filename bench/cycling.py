"""cycling-volumes network benchmarks (one core).

1. Corridor building (``analysis.cycling_network.build_corridors``, top 20) over 50,000 segments
   of a generated street network: a jittered 100 m grid of curved streets, each block side cut
   into 1-3 segments (plain vertices, as in DB Rad+), 8 % of block sides missing (T junctions),
   busier arterials every 8th street, log-normal noise on the volumes. Goal: < 5 s.
   With ``../shared/data`` present also on Hamburg's real DB Rad+ network (six weeks joined).
2. Matching 10,000 counting stations (random points) to the 50,000 segments within 25 m: ours
   (``match_stations``: shapely STRtree ``dwithin`` query + distances, input checks included)
   against ``geopandas.sjoin_nearest`` (``max_distance=25``) on the same points and lines; both
   build their spatial index inside the timed call. The matches must be the same.

Prints ``name value unit`` lines; ratios as ``..._ratio_vs_<peer> value x`` (the peer's time
divided by ours: higher is better). ``--json`` prints the figures as one JSON object instead.
``--map [PATH]`` draws the Hamburg map of the docs (default
``docs/img/cycling-corridors-hamburg.png``) instead of benchmarking.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, as the goals say

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import shapely

SEED = 7
N_SEGMENTS = 50_000
N_STATIONS = 10_000
RUNS = 5
SPACING = 100.0  # m between junctions
X0, Y0 = 560_000.0, 5_930_000.0
GOAL_S = 5.0
MAX_DISTANCE = 25.0
PROJECT = Path(__file__).resolve().parents[1]
MAP = PROJECT / "docs" / "img" / "cycling-corridors-hamburg.png"

FIGURES: list[tuple[str, object, str]] = []


def figure(name: str, value: object, unit: str) -> None:
    FIGURES.append((name, value, unit))


def street_network(n_segments: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``n_segments`` LineStrings (EPSG:25832) and their weekly rides; see the docstring."""
    side = int(np.ceil(np.sqrt(n_segments / 3.2))) + 2  # ~3.7 segments per junction
    jitter = rng.uniform(-15, 15, (side, side, 2))
    gx, gy = np.meshgrid(np.arange(side), np.arange(side), indexing="ij")
    nodes = np.stack([X0 + gx * SPACING, Y0 + gy * SPACING], axis=-1) + jitter
    # block sides: horizontal (i, j) -> (i + 1, j), vertical (i, j) -> (i, j + 1)
    i, j = np.meshgrid(np.arange(side - 1), np.arange(side), indexing="ij")
    h = (i.ravel(), j.ravel(), i.ravel() + 1, j.ravel())
    v = (j.ravel(), i.ravel(), j.ravel(), i.ravel() + 1)
    a_i, a_j, b_i, b_j = (np.concatenate([p, q]) for p, q in zip(h, v, strict=True))
    street = np.where(np.arange(len(a_i)) < len(h[0]), a_j, a_i)  # row or column number
    keep = rng.random(len(a_i)) > 0.08
    a, b = nodes[a_i[keep], a_j[keep]], nodes[b_i[keep], b_j[keep]]
    street = street[keep]
    pieces = rng.integers(1, 4, len(a))
    bow = rng.uniform(-6, 6, len(a))  # m: streets bend a little
    edge = np.repeat(np.arange(len(a)), pieces)
    k = pieces[edge]
    step = np.arange(len(edge)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    # three vertices per segment at t0, mid, t1 along the side's bow (shared ends match)
    t = np.stack([step / k, (step + 0.5) / k, (step + 1) / k], axis=1)
    d = b[edge] - a[edge]
    normal = np.stack([-d[:, 1], d[:, 0]], axis=1) / np.linalg.norm(d, axis=1)[:, None]
    pts = (
        a[edge][:, None, :]
        + t[..., None] * d[:, None, :]
        + (bow[edge][:, None] * np.sin(np.pi * t))[..., None] * normal[:, None, :]
    )
    if len(pts) < n_segments:
        raise RuntimeError(f"generated {len(pts)} segments, fewer than {n_segments}")
    lines = shapely.linestrings(pts[:n_segments])
    arterial = (street[edge] % 8) == 0
    base = np.where(arterial, 60.0, 10.0)[:n_segments]
    noise = rng.lognormal(0.0, 0.3, n_segments)
    return lines, np.maximum(1.0, np.round(base * noise))


def median_seconds(fn) -> tuple[float, object]:
    result = fn()  # warm-up
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result = fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), result


def bench_corridors(lines: np.ndarray, rides: np.ndarray) -> None:
    from cut_processes.analysis.cycling_network import build_corridors

    secs, corridors = median_seconds(lambda: build_corridors(lines, rides, top_n=20))
    figure("corridors_segments", len(lines), "segments")
    figure("corridors_build_s", round(secs, 3), "s")
    figure(f"corridors_goal_{GOAL_S:g}s", "met" if secs < GOAL_S else "missed", "-")
    figure("corridors_top1_length", round(corridors[0].length_m), "m")
    figure("corridors_top1_ride_km", round(corridors[0].ride_km, 1), "ride-km")
    try:
        from cut_processes.analysis import cycling_eval

        folder = cycling_eval.bike_folder(None)
    except FileNotFoundError:
        print("cycling: ../shared/data missing, no Hamburg figure", file=sys.stderr)
        return
    union = cycling_eval.across_weeks(cycling_eval.load_weeks(folder))
    secs, _ = median_seconds(lambda: build_corridors(union.lines, union.rides, top_n=20))
    figure("corridors_hamburg_segments", len(union.lines), "segments")
    figure("corridors_hamburg_build_s", round(secs, 3), "s")


def bench_matching(lines: np.ndarray, rng: np.random.Generator) -> None:
    import geopandas as gpd

    from cut_processes.analysis.cycling_network import match_stations

    xmin, ymin, xmax, ymax = shapely.total_bounds(lines)
    stations = shapely.points(
        rng.uniform(xmin, xmax, N_STATIONS), rng.uniform(ymin, ymax, N_STATIONS)
    )

    def ours():
        start = time.perf_counter()
        matches = match_stations(stations, lines, max_distance_m=MAX_DISTANCE)
        return time.perf_counter() - start, matches

    def peer():
        # fresh frames per run (untimed), so the peer builds its spatial index in the call too
        left = gpd.GeoDataFrame(geometry=gpd.GeoSeries(stations, crs=25832))
        right = gpd.GeoDataFrame(geometry=gpd.GeoSeries(lines, crs=25832))
        start = time.perf_counter()
        joined = gpd.sjoin_nearest(
            left, right, how="left", max_distance=MAX_DISTANCE, distance_col="distance"
        )
        return time.perf_counter() - start, joined

    ours(), peer()  # warm-up
    ours_runs, peer_runs = [], []
    for _ in range(RUNS):  # interleaved, so load on the shared machine hits both alike
        ours_runs.append(ours())
        peer_runs.append(peer())
    ours_s = statistics.median(r[0] for r in ours_runs)
    peer_s = statistics.median(r[0] for r in peer_runs)
    index, distance = ours_runs[-1][1]
    joined = peer_runs[-1][1]
    # same matches: ours is one of the peer's (tied) nearest segments at the same distance
    options: dict[int, set[int]] = {}
    for station, seg in zip(joined.index, joined["index_right"], strict=True):
        if seg == seg:  # not NaN
            options.setdefault(int(station), set()).add(int(seg))
    matched = np.flatnonzero(index >= 0)
    assert set(matched.tolist()) == set(options), "ours and sjoin_nearest match other stations"
    assert all(int(index[s]) in options[int(s)] for s in matched), "other segments matched"
    peer_distance = joined.groupby(level=0)["distance"].min().to_numpy()
    assert np.allclose(distance[matched], peer_distance[matched]), "other distances"
    ties = sum(len(v) > 1 for v in options.values())
    figure("match_stations", N_STATIONS, "stations")
    figure("match_segments", len(lines), "segments")
    figure("match_matched", len(matched), "stations")
    figure("match_ties_in_peer", ties, "stations")
    figure("match_ours_s", round(ours_s, 3), "s")
    figure("match_sjoin_nearest_s", round(peer_s, 3), "s")
    figure("match_ours_ratio_vs_sjoin_nearest", round(peer_s / ours_s, 2), "x")


def draw_map(path: Path) -> None:
    """The six-week top-20 corridors over the DB Rad+ network and the Velorouten."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt

    from cut_processes.analysis import cycling_eval

    run = cycling_eval.analyse_hamburg(None)
    union = run["all"]
    velo, _ = run["velorouten"]
    corridors = run["results"][cycling_eval.ALL_WEEKS]["corridors"]
    fig, ax = plt.subplots(figsize=(10, 10), dpi=150)

    def draw(geoms, **style):
        for g in shapely.get_parts(geoms):
            xy = shapely.get_coordinates(g) / 1000.0
            ax.plot(xy[:, 0], xy[:, 1], solid_capstyle="round", **style)

    widths = 0.2 + 1.6 * np.clip(union.rides / np.percentile(union.rides, 99), 0, 1)
    order = np.argsort(union.rides)
    for g, w in zip(union.lines[order], widths[order], strict=True):
        xy = shapely.get_coordinates(g) / 1000.0
        ax.plot(xy[:, 0], xy[:, 1], color="#b0b0b0", linewidth=w, solid_capstyle="round")
    draw(velo, color="#1b9e77", linewidth=1.1, alpha=0.9)
    for c in corridors:
        draw(c.geometry, color="#d95f02", linewidth=2.6, alpha=0.9)
    for c in corridors:
        mid = shapely.get_coordinates(
            shapely.line_interpolate_point(c.geometry, 0.5, normalized=True)
        )[0]
        ax.annotate(
            str(c.rank),
            mid / 1000.0,
            fontsize=9,
            fontweight="bold",
            color="#7a2e00",
            ha="center",
            va="center",
            path_effects=[pe.withStroke(linewidth=2.5, foreground="white")],
        )
    xmin, ymin, xmax, ymax = shapely.total_bounds(np.array([c.geometry for c in corridors]))
    pad = 2000.0
    ax.set_xlim((xmin - pad) / 1000, (xmax + pad) / 1000)
    ax.set_ylim((ymin - pad) / 1000, (ymax + pad) / 1000)
    ax.set_aspect("equal")
    ax.set_xlabel("easting (km, EPSG:25832)")
    ax.set_ylabel("northing (km, EPSG:25832)")
    ax.plot([], [], color="#b0b0b0", linewidth=1.5, label="DB Rad+ segments (width: mean rides)")
    ax.plot([], [], color="#1b9e77", linewidth=1.5, label="Velorouten")
    ax.plot([], [], color="#d95f02", linewidth=2.6, label="top-20 corridors, six weeks (rank)")
    ax.legend(loc="lower left", framealpha=0.9)
    ax.set_title("Hamburg: most-used cycling corridors, DB Rad+ 2023 (six weeks)")
    fig.text(0.01, 0.005, cycling_eval.SOURCE, fontsize=7, color="#555555")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path}", file=sys.stderr)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--map", nargs="?", const=str(MAP), help="draw the Hamburg map")
    args = parser.parse_args()
    if args.map:
        draw_map(Path(args.map))
        return 0
    rng = np.random.default_rng(SEED)
    lines, rides = street_network(N_SEGMENTS, rng)
    print(f"cycling: {len(lines)} generated segments", file=sys.stderr)
    bench_corridors(lines, rides)
    bench_matching(lines, rng)
    if args.json:
        print(json.dumps({name: value for name, value, _ in FIGURES}, indent=1))
    else:
        for name, value, unit in FIGURES:
            print(f"{name} {value} {unit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
