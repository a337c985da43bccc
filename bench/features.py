"""Feature queries on 100,000 buildings: ours (GeoPackage and PostGIS) against pygeoapi's providers.

Capabilities, through the Flask test client of one app (the whole pygeoapi request path):

(a) ``filter_page``: one page of 100 with a bbox (CRS84, about a fifth of the buildings) and a
    CQL2 attribute filter (``storeys > 2 AND function_name LIKE 'Wohn%'``), in queries/s;
(b) ``paging``: every feature, 1,000 per page (``offset`` paging, numberMatched each page),
    in items/s; each pass checks that every feature arrives once.

Ours: ``cut_processes.providers.FeatureProvider`` on a GeoPackage and on a PostGIS table
holding the same features (EPSG:25832, output in CRS84). Peers: pygeoapi's ``SQLiteGPKG``
provider on the same GeoPackage for (b) (SpatiaLite, loaded into pysqlite3 for that provider
only, because this Python's sqlite3 cannot load extensions; it ignores ``filter``), and
pygeoapi's ``PostgreSQL`` provider on the same PostGIS table for (a) (filters through
pygeofilter's SQLAlchemy backend). Every filtered answer is checked to be filtered on
the server (numberMatched equals the count computed in Python from the generated data).

Data: the demo district's buildings (seed 42) copied onto a grid of 3 km tiles up to 100,000.
A PostgreSQL database is created for the run and dropped after it. A warm-up, then the median
of 5 runs for (a) and of 3 full passes for (b). The SQLiteGPKG peer's full pass takes one to
two minutes, so it gets one pass over every 4th page (25 pages spread over all offsets; its
rate is those pages' items over their time), to stay within ~3 minutes on 2 cores.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np
import psycopg
import pyproj
import shapely

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR))

import _common as common  # noqa: E402  (bench/ is the script's folder)
from _common import write_config  # noqa: E402
from items import demo_buildings, random_buildings  # noqa: E402  (a sibling benchmark)

SEED = 42
TOTAL = 100_000
PAGE_SIZE = 1000
FILTER_PAGE = 100
FILTER_RUNS = 5
PAGING_RUNS = 3
SQLITE_STRIDE = 4
FILTER = "storeys > 2 AND function_name LIKE 'Wohn%'"
ADMIN_URL = os.environ.get("CUT_BENCH_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_25832 = "http://www.opengis.net/def/crs/EPSG/0/25832"
FIELDS = {"id": "string", "function": "string", "function_name": "string", "roof_type": "string",
          "measured_height": "number", "eaves_height": "number", "storeys": "integer",
          "year_built": "integer", "facade_image": "string", "district": "string",
          "footprint_area": "number", "source": "string"}  # fmt: skip


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def figure(name: str, value: float, unit: str) -> None:
    digits = 2 if unit == "x" else 1 if value < 100 else 0
    print(f"{name} {value:.{digits}f} {unit}", flush=True)


# --- data ---------------------------------------------------------------------------------------


def buildings_100k(workdir: Path) -> list[dict]:
    district = demo_buildings(workdir) or random_buildings()
    copies = -(-TOTAL // len(district))
    features = []
    for k in range(copies):
        offset = np.array([3000.0 * (k % 7), 3000.0 * (k // 7)])
        shifted = shapely.transform(district.geometries, lambda c, o=offset: c + o)
        for geometry, properties in zip(shifted, district.properties, strict=True):
            if len(features) == TOTAL:
                break
            values = {k2: v for k2, v in properties.items() if k2 in FIELDS and v is not None}
            values["id"] = f"{properties['id']}-{k}"
            features.append({"geometry": geometry, "properties": values})
    return features


def expected_filter_count(features: list[dict], box_25832: shapely.Geometry) -> int:
    """The oracle for (a): computed in Python from the generated features."""
    geometries = np.array([f["geometry"] for f in features], dtype=object)
    inside = shapely.intersects(geometries, box_25832)
    return sum(
        1
        for hit, f in zip(inside.tolist(), features, strict=True)
        if hit
        and (f["properties"].get("storeys") or 0) > 2
        and str(f["properties"].get("function_name", "")).startswith("Wohn")
    )


# --- peers ----------------------------------------------------------------------------------------


def spatialite_for_sqlitegpkg() -> str | None:
    """Give pygeoapi's SQLiteGPKG provider an sqlite3 that loads SpatiaLite; None if it works."""
    try:
        import pysqlite3.dbapi2 as pysqlite
    except ImportError:
        return "pysqlite3-binary is not installed (pip install '.[test]')"
    try:
        connection = pysqlite.connect(":memory:")
        connection.enable_load_extension(True)
        connection.load_extension(os.getenv("SPATIALITE_LIBRARY_PATH", "mod_spatialite.so"))
        connection.close()
    except Exception as err:  # the module is missing or does not load
        return f"SpatiaLite does not load ({err}); apt-get install libsqlite3-mod-spatialite"
    import pygeoapi.provider.sqlite as pygeoapi_sqlite

    # Only the SQLiteGPKG provider's module sees pysqlite3; everything else keeps sqlite3.
    pygeoapi_sqlite.sqlite3 = types.SimpleNamespace(**vars(pysqlite))
    return None


def collection(title: str, provider: dict) -> dict:
    crs = {"storage_crs": EPSG_25832, "crs": [CRS84, EPSG_25832]}
    return common.collection(title, {**crs, **provider}, [9.8, 53.5, 10.5, 54.0])


# --- measuring -----------------------------------------------------------------------------------


def get_json(client, url: str) -> dict:
    response = client.get(url)
    if response.status_code != 200:
        raise RuntimeError(f"{url}: HTTP {response.status_code} {response.get_data()[:300]!r}")
    return response.get_json()


def filter_queries_per_second(client, collection_id: str, bbox: str, expected: int) -> float:
    from urllib.parse import quote

    url = (f"/collections/{collection_id}/items?f=json&limit={FILTER_PAGE}&bbox={bbox}"
           f"&filter={quote(FILTER)}")  # fmt: skip
    body = get_json(client, url)  # warm-up, and the check that the filter ran on the server
    if body.get("numberMatched") != expected or body["numberReturned"] != FILTER_PAGE:
        raise RuntimeError(
            f"{collection_id}: numberMatched {body.get('numberMatched')}, expected {expected}"
        )
    rates = []
    for _ in range(FILTER_RUNS):
        started = time.perf_counter()
        client.get(url).get_data()
        rates.append(1 / (time.perf_counter() - started))
    return statistics.median(rates)


def paging_items_per_second(client, collection_id: str, runs: int, stride: int = 1) -> float:
    """Median of ``runs`` full paging passes; each checks that every feature arrived once.

    ``stride`` > 1 times every stride-th page only (spread over all offsets) and scales the
    time up: for a peer whose full pass takes minutes.
    """
    urls = [f"/collections/{collection_id}/items?f=json&limit={PAGE_SIZE}&offset={offset}"
            for offset in range(0, TOTAL, PAGE_SIZE)]  # fmt: skip
    for url in urls[:3]:  # warm-up
        get_json(client, url)
    timed = urls[::stride]
    rates = []
    for _ in range(runs):
        ids: set = set()
        started = time.perf_counter()
        for url in timed:
            ids.update(f["id"] for f in get_json(client, url)["features"])
        rates.append(len(timed) * PAGE_SIZE / (time.perf_counter() - started))
        if len(ids) != len(timed) * PAGE_SIZE:
            raise RuntimeError(f"{collection_id}: {len(ids)} features served, expected "
                               f"{len(timed) * PAGE_SIZE}")  # fmt: skip
    return statistics.median(rates)


def main() -> None:
    from cut_processes.cli import write_openapi
    from cut_processes.io.store import open_store
    from cut_processes.server import create_app

    started = time.perf_counter()
    os.environ.setdefault("CUT_ACCESS_LOG_LEVEL", "WARNING")  # no access line per page
    admin = psycopg.connect(ADMIN_URL, autocommit=True)
    database = f"cut_bench_{secrets.token_hex(4)}"
    admin.execute(f"CREATE DATABASE {database}")
    try:
        url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        with tempfile.TemporaryDirectory(prefix="bench-features-") as tmp:
            workdir = Path(tmp)
            features = buildings_100k(workdir)
            log(f"{len(features)} buildings generated ({time.perf_counter() - started:.0f} s)")
            gpkg = workdir / "buildings.gpkg"
            for location in (gpkg, url):
                t0 = time.perf_counter()
                open_store(location).replace_collection(
                    "buildings", features, fields=FIELDS, geometry_type="Polygon"
                )
                log(f"written to {location} in {time.perf_counter() - t0:.1f} s")

            conninfo = psycopg.conninfo.conninfo_to_dict(url)
            resources = {
                "ours_gpkg": collection("ours, GeoPackage", {
                    "name": "cut_processes.providers.FeatureProvider", "data": str(gpkg),
                    "table": "buildings", "id_field": "id"}),
                "ours_postgis": collection("ours, PostGIS", {
                    "name": "cut_processes.providers.FeatureProvider", "data": "unused",
                    "store": url, "table": "buildings", "id_field": "id"}),
                "pygeoapi_postgresql": collection("pygeoapi PostgreSQL", {
                    "name": "PostgreSQL", "table": "buildings", "id_field": "id",
                    "geom_field": "geom",
                    "data": {"host": conninfo.get("host", "127.0.0.1"),
                             "port": int(conninfo.get("port", 5432)),
                             "dbname": database, "user": conninfo.get("user", "postgres"),
                             "password": conninfo.get("password", ""),
                             "search_path": ["public"]}}),
            }  # fmt: skip
            sqlite_problem = spatialite_for_sqlitegpkg()
            if sqlite_problem is None:
                resources["pygeoapi_sqlitegpkg"] = collection("pygeoapi SQLiteGPKG", {
                    "name": "SQLiteGPKG", "data": str(gpkg), "table": "buildings",
                    "id_field": "id"})  # fmt: skip
            else:
                log(f"pygeoapi SQLiteGPKG cannot run here: {sqlite_problem}")
            write_config(workdir / "config.yml", resources, PAGE_SIZE)
            write_openapi(workdir / "config.yml", workdir / "openapi.yml")
            client = create_app(workdir / "config.yml", workdir / "openapi.yml").test_client()

            to_crs84 = pyproj.Transformer.from_crs("EPSG:25832", "OGC:CRS84", always_xy=True)
            x0, y0 = 561000.0, 5933000.0
            box = shapely.box(x0, y0, x0 + 2 * 3000 + 2500, y0 + 3000 + 2000)  # ~1/5 of them
            west, south = to_crs84.transform(*box.bounds[:2])
            east, north = to_crs84.transform(*box.bounds[2:])
            bbox = f"{west},{south},{east},{north}"
            # The oracle uses the CRS84 box as pygeoapi transforms it back (its 4 corners).
            back = pyproj.Transformer.from_crs("OGC:CRS84", "EPSG:25832", always_xy=True)
            corners = [back.transform(x, y) for x, y in
                       ((west, south), (east, south), (east, north), (west, north))]  # fmt: skip
            xs, ys = zip(*corners, strict=True)
            expected = expected_filter_count(
                features, shapely.box(min(xs), min(ys), max(xs), max(ys))
            )
            figure("features", TOTAL, "features")
            figure("filter_page_expected_matches", expected, "features")

            rates = {}
            for name in ("ours_gpkg", "ours_postgis", "pygeoapi_postgresql"):
                rates[name] = filter_queries_per_second(client, name, bbox, expected)
                figure(f"filter_page_{name}", rates[name], "queries/s")
            peer = rates["pygeoapi_postgresql"]
            figure("filter_page_ours_gpkg_ratio_vs_pygeoapi_postgresql",
                   rates["ours_gpkg"] / peer, "x")  # fmt: skip
            figure("filter_page_ours_postgis_ratio_vs_pygeoapi_postgresql",
                   rates["ours_postgis"] / peer, "x")  # fmt: skip
            log(f"filter page done ({time.perf_counter() - started:.0f} s)")

            paging = {}
            for name in ("ours_gpkg", "ours_postgis"):
                paging[name] = paging_items_per_second(client, name, PAGING_RUNS)
                figure(f"paging_{name}", paging[name], "items/s")
                log(f"paging {name} done ({time.perf_counter() - started:.0f} s)")
            if sqlite_problem is None:
                # Its full pass takes one to two minutes (its pages slow down with the offset):
                # one pass over every 4th page, spread over all offsets.
                peer = paging_items_per_second(client, "pygeoapi_sqlitegpkg", 1, SQLITE_STRIDE)
                figure("paging_pygeoapi_sqlitegpkg", peer, "items/s")
                for ours in ("ours_gpkg", "ours_postgis"):
                    figure(f"paging_{ours}_ratio_vs_pygeoapi_sqlitegpkg", paging[ours] / peer, "x")
            else:
                print("paging_pygeoapi_sqlitegpkg 0 unavailable", flush=True)
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.close()
    log(f"total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
