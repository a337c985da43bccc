"""Items per second when paging through a buildings collection over pygeoapi's HTTP API.

Capability: ``GET /collections/{id}/items?f=json&limit=1000&offset=...`` until every feature has
been served, through the Flask test client of the app (no network, the whole pygeoapi request
path: parameter parsing, provider construction, query, JSON encoding).

Ours: ``cut_processes.providers.GeoPackageProvider`` on a GeoPackage stored in EPSG:25832 (as our
real data is), so every page is transformed to CRS84, pygeoapi's default output CRS.
Peer: pygeoapi's own ``GeoJSON`` provider on a GeoJSON export of the same features written in
CRS84 (so it has no transformation to do). Also reported: ours on a GeoPackage stored in CRS84.

Data: the demo district (``cut_processes.demo.generate_district``) when that is available,
otherwise ~2,000 random rectangles in the district's extent; and a 10x larger set made of shifted
copies, to show scaling. Fixed seed, one warm-up pass (which also checks every feature arrives),
median of 5 timed passes.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import fiona
import numpy as np
import pyproj
import shapely
from _common import write_config
from shapely.geometry import mapping

SEED = 42
PAGE_SIZE = 1000
RUNS = 5
LARGE_COPIES = 10
PROJECT = Path(__file__).resolve().parents[1]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_25832 = "http://www.opengis.net/def/crs/EPSG/0/25832"


def log(message: str) -> None:
    """Progress and notes go to stderr; stdout carries only the figures."""
    print(message, file=sys.stderr, flush=True)


# --- data --------------------------------------------------------------------------------------


class Buildings:
    """Features in EPSG:25832: ids, shapely geometries, property dicts and the fiona schema."""

    def __init__(self, schema: dict, geometries: np.ndarray, properties: list[dict]):
        self.schema = schema
        self.geometries = geometries
        self.properties = properties

    def __len__(self) -> int:
        return len(self.properties)

    def replicated(self, copies: int) -> Buildings:
        """``copies`` copies tiled 3 km apart east and north, ids suffixed with the copy."""
        geometries, properties = [], []
        for k in range(copies):
            offset = np.array([3000.0 * (k % 5), 3000.0 * (k // 5)])
            geometries.append(shapely.transform(self.geometries, lambda c, o=offset: c + o))
            properties.extend({**p, "id": f"{p['id']}-{k}"} for p in self.properties)
        return Buildings(self.schema, np.concatenate(geometries), properties)


def demo_buildings(workdir: Path) -> Buildings | None:
    """The demo district's buildings, or None when the generator is not there (yet)."""
    try:
        from cut_processes.demo import generate_district
    except ImportError as err:
        log(f"demo district generator not available ({err}); using random rectangles")
        return None
    out_dir = workdir / "demo"
    try:
        result = generate_district(out_dir, SEED)
        path = Path(result) if isinstance(result, str | Path) else out_dir / "district.gpkg"
        if path.is_dir():
            path = path / "district.gpkg"
        with fiona.open(path, layer="buildings") as src:
            schema = {
                "geometry": src.schema["geometry"],
                "properties": dict(src.schema["properties"]),
            }
            records = list(src)
    except Exception as err:  # the generator is another engineer's work in progress
        log(f"demo district could not be generated ({err!r}); using random rectangles")
        return None
    geometries = shapely.from_geojson(
        [json.dumps(dict(r.geometry.__geo_interface__)) for r in records]
    )
    return Buildings(schema, geometries, [dict(r.properties) for r in records])


def random_buildings(count: int = 2000) -> Buildings:
    """Rectangles of 8-40 m in the demo district's extent (EPSG:25832) with typical attributes."""
    rng = np.random.default_rng(SEED)
    x = rng.uniform(561000, 563500, count)
    y = rng.uniform(5933000, 5935000, count)
    width, depth = rng.uniform(8, 40, count), rng.uniform(8, 25, count)
    geometries = shapely.box(x, y, x + width, y + depth)
    functions = ["Wohnhaus", "Bürogebäude", "Garage", "Geschäftshaus", "Schule"]
    storeys = rng.integers(1, 9, count)
    properties = [
        {
            "id": f"DEHH{i:08d}",
            "function_name": functions[i % len(functions)],
            "storeys": None if i % 3 == 0 else int(storeys[i]),
            "height": round(float(storeys[i] * 3.1 + rng.uniform(0, 2)), 2),
            "year_built": int(rng.integers(1870, 2024)),
        }
        for i in range(count)
    ]
    schema = {
        "geometry": "Polygon",
        "properties": {
            "id": "str",
            "function_name": "str",
            "storeys": "int",
            "height": "float",
            "year_built": "int",
        },
    }
    return Buildings(schema, geometries, properties)


def write_gpkg(buildings: Buildings, path: Path, to_crs84: pyproj.Transformer | None) -> None:
    geometries = buildings.geometries
    crs = "EPSG:25832"
    if to_crs84 is not None:
        geometries = shapely.transform(geometries, to_crs84.transform, interleaved=False)
        crs = "EPSG:4326"  # GeoPackage stores x=longitude, y=latitude: CRS84 order
    records = (
        {"geometry": mapping(g), "properties": p}
        for g, p in zip(geometries, buildings.properties, strict=True)
    )
    with fiona.open(
        path, "w", driver="GPKG", crs=crs, schema=buildings.schema, layer="buildings"
    ) as dst:
        dst.writerecords(records)


def write_geojson(buildings: Buildings, path: Path, to_crs84: pyproj.Transformer) -> None:
    geometries = shapely.transform(buildings.geometries, to_crs84.transform, interleaved=False)
    features = [
        {"type": "Feature", "id": p["id"], "geometry": mapping(g), "properties": p}
        for g, p in zip(geometries, buildings.properties, strict=True)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


# --- the app -----------------------------------------------------------------------------------


def collection(title: str, provider: dict) -> dict:
    return common.collection(title, provider, [9.8, 53.5, 10.2, 53.7])


def ours(path: Path, storage_crs: str) -> dict:
    return {
        "name": "cut_processes.providers.GeoPackageProvider",
        "data": str(path),
        "table": "buildings",
        "id_field": "id",
        "storage_crs": storage_crs,
        "crs": [CRS84, EPSG_25832],
    }


def peer(path: Path) -> dict:
    return {"name": "GeoJSON", "data": str(path), "id_field": "id"}


def make_app(config_path: Path, openapi_path: Path):
    """The suite's app when its factory works, else pygeoapi's own Flask app."""
    pygeoapi_cli = Path(sys.executable).with_name("pygeoapi")
    subprocess.run(
        [str(pygeoapi_cli), "openapi", "generate", str(config_path), "-of", str(openapi_path)],
        check=True,
        capture_output=True,
    )
    try:
        from cut_processes.server import create_app

        return create_app(config_path, openapi_path)
    except Exception as err:  # the factory is the lead's work in progress
        log(f"cut_processes.server.create_app not usable ({err!r}); using pygeoapi.flask_app")
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    os.environ["PYGEOAPI_OPENAPI"] = str(openapi_path)
    import pygeoapi.flask_app

    return pygeoapi.flask_app.APP


# --- measuring ---------------------------------------------------------------------------------


def page_urls(collection_id: str, total: int) -> list[str]:
    return [
        f"/collections/{collection_id}/items?f=json&limit={PAGE_SIZE}&offset={offset}"
        for offset in range(0, total, PAGE_SIZE)
    ]


def check_all_served(client, collection_id: str, total: int) -> None:
    """Warm-up pass that also checks every feature arrives once."""
    seen = []
    for url in page_urls(collection_id, total):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url}: HTTP {response.status_code} {response.get_data()[:300]}")
        seen.extend(f["id"] for f in response.get_json()["features"])
    if len(seen) != total or len(set(seen)) != total:
        raise RuntimeError(f"{collection_id}: {len(seen)} features served, expected {total}")


def items_per_second(client, collection_id: str, total: int) -> float:
    """Median over RUNS full paging passes (after a checked warm-up pass)."""
    check_all_served(client, collection_id, total)
    urls = page_urls(collection_id, total)
    rates = []
    for _ in range(RUNS):
        started = time.perf_counter()
        for url in urls:
            client.get(url).get_data()
        rates.append(total / (time.perf_counter() - started))
    return statistics.median(rates)


def figure(name: str, value: float, unit: str) -> None:
    digits = 2 if unit == "x" else 0
    print(f"{name} {value:.{digits}f} {unit}", flush=True)


def main() -> None:
    to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
    with tempfile.TemporaryDirectory(prefix="bench-items-") as tmp:
        workdir = Path(tmp)
        district = demo_buildings(workdir) or random_buildings()
        large = district.replicated(LARGE_COPIES)
        resources = {}
        for label, buildings in (("district", district), ("large", large)):
            write_gpkg(buildings, workdir / f"{label}.gpkg", None)
            write_gpkg(buildings, workdir / f"{label}_crs84.gpkg", to_crs84)
            write_geojson(buildings, workdir / f"{label}.geojson", to_crs84)
            resources[f"{label}_ours"] = collection(
                f"{label}, GeoPackage EPSG:25832", ours(workdir / f"{label}.gpkg", EPSG_25832)
            )
            resources[f"{label}_ours_crs84"] = collection(
                f"{label}, GeoPackage CRS84", ours(workdir / f"{label}_crs84.gpkg", CRS84)
            )
            resources[f"{label}_geojson"] = collection(
                f"{label}, GeoJSON CRS84", peer(workdir / f"{label}.geojson")
            )
        write_config(workdir / "config.yml", resources, PAGE_SIZE)
        client = make_app(workdir / "config.yml", workdir / "openapi.yml").test_client()

        for label, buildings, suffix in (("district", district, ""), ("large", large, "_large")):
            total = len(buildings)
            figure(f"features{suffix or '_district'}", total, "features")
            rate_ours = items_per_second(client, f"{label}_ours", total)
            rate_peer = items_per_second(client, f"{label}_geojson", total)
            rate_crs84 = items_per_second(client, f"{label}_ours_crs84", total)
            figure(f"items_per_s_ours{suffix}", rate_ours, "items/s")
            figure(f"items_per_s_pygeoapi_geojson{suffix}", rate_peer, "items/s")
            ratio = rate_ours / rate_peer
            figure(f"items_per_s_ours{suffix}_ratio_vs_pygeoapi_geojson", ratio, "x")
            figure(f"items_per_s_ours_crs84_storage{suffix}", rate_crs84, "items/s")
            pages = math.ceil(total / PAGE_SIZE)
            log(f"{label}: {total} features in {pages} pages of {PAGE_SIZE}")


if __name__ == "__main__":
    main()
