"""The deterministic demo district: contents, plausibility, rasters, facades, determinism."""

from __future__ import annotations

import itertools
import json
import re
import shutil
from pathlib import Path

import fiona
import numpy as np
import pytest
import rasterio
from PIL import Image
from rasterio.features import rasterize
from shapely import box
from shapely.geometry import shape

from cut_processes.demo import GENERATOR_VERSION, district_exists, generate_district
from cut_processes.demo.codes import FUNCTIONS, ROOF_TYPES

SEED = 42
BOX = box(561000, 5933000, 563500, 5935000)
FLAT, SAWTOOTH, MONO, GABLE = "1000", "3800", "2100", "3100"


def read_layer(folder: Path, layer: str) -> list[dict]:
    """Features of a layer as dicts: properties plus ``wkb`` (None for tables)."""
    with fiona.open(folder / "district.gpkg", layer=layer) as src:
        return [
            {
                **dict(f.properties),
                "wkb": shape(f.geometry).wkb if f.geometry is not None else None,
            }
            for f in src
        ]


@pytest.fixture(scope="module")
def district(demo_dir: Path) -> Path:
    """The seed-42 district of the session (generated once by tests/conftest.py)."""
    return demo_dir


@pytest.fixture(scope="module")
def buildings(district: Path) -> list[dict]:
    return read_layer(district, "buildings")


@pytest.fixture(scope="module")
def truth(district: Path) -> dict[str, dict]:
    return {t["id"]: t for t in read_layer(district, "buildings_truth")}


@pytest.fixture(scope="module")
def manifest(district: Path) -> dict:
    return json.loads((district / "demo.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def again(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same seed generated a second time, into another folder."""
    out = tmp_path_factory.mktemp("again") / "district"
    generate_district(out, SEED)
    return out


def test_manifest_describes_the_district(district: Path, manifest: dict, buildings):
    assert manifest["generator"] == "cut-twin demo"
    assert manifest["version"] == GENERATOR_VERSION
    assert manifest["seed"] == SEED
    assert manifest["crs"] == "EPSG:25832"
    assert manifest["bbox_25832"] == [561000, 5933000, 563500, 5935000]
    lon0, lat0, lon1, lat1 = manifest["bbox_crs84"]
    assert 9.91 < lon0 < lon1 < 9.97 and 53.53 < lat0 < lat1 < 53.57
    assert manifest["source"] == "generated" and manifest["licence"] == "CC0-1.0"
    counts = manifest["counts"]
    assert counts["buildings"] == len(buildings)
    assert counts["buildings_with_hidden_storeys"] == sum(b["storeys"] is None for b in buildings)
    assert counts["streets"] == len(read_layer(district, "streets"))
    for name in ("district.gpkg", "dtm.tif", "dsm.tif", "facades/labels.json"):
        assert name in manifest["files"]
    assert all((district / f).is_file() for f in manifest["files"])
    written = {p.relative_to(district).as_posix() for p in district.rglob("*") if p.is_file()}
    assert written == {*manifest["files"], "demo.json"}


def test_no_temporary_folders_are_left_behind(district: Path):
    assert [p.name for p in district.parent.iterdir()] == [district.name]


def test_building_count_ids_and_schema(buildings):
    assert 1900 <= len(buildings) <= 2300
    ids = [b["id"] for b in buildings]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"DEHH_DEMO_\d{6}", i) for i in ids)
    expected = {
        "id", "function", "function_name", "roof_type", "measured_height", "eaves_height",
        "storeys", "year_built", "facade_image", "district", "footprint_area", "source", "wkb",
    }  # fmt: skip
    for b in buildings:
        assert set(b) == expected
        assert b["function_name"] == FUNCTIONS[b["function"]]
        assert b["roof_type"] in ROOF_TYPES
        assert isinstance(b["measured_height"], float) and isinstance(b["eaves_height"], float)
        assert b["storeys"] is None or isinstance(b["storeys"], int)
        assert 1860 <= b["year_built"] <= 2024
    districts = {b["district"] for b in buildings}
    assert 3 <= len(districts) <= 4
    assert all(sum(b["district"] == d for b in buildings) >= 100 for d in districts)


def test_geometries_are_valid_and_inside_the_box(district: Path, buildings):
    holes = 0
    for b in buildings:
        geom = shape_of(b)
        assert geom.geom_type == "Polygon" and geom.is_valid and not geom.is_empty
        assert BOX.contains(geom)
        assert b["footprint_area"] == pytest.approx(geom.area, abs=0.01)
        holes += len(geom.interiors) > 0
    assert holes >= 3, "closed perimeter blocks with a courtyard"
    for s in read_layer(district, "streets"):
        geom = shape_of(s)
        assert geom.geom_type == "LineString" and geom.is_valid and BOX.covers(geom)


def shape_of(feature: dict):
    from shapely import wkb

    return wkb.loads(feature["wkb"])


def test_building_shapes_are_varied(buildings):
    from shapely import oriented_envelope

    rect = np.array([g.area / oriented_envelope(g).area for g in map(shape_of, buildings)])
    areas = np.array([b["footprint_area"] for b in buildings])
    assert (rect > 0.99).mean() > 0.4, "many rectangles"
    assert ((rect < 0.9) & (areas > 80)).sum() > 100, "L-shapes and other non-rectangles"
    assert (areas > 1500).sum() > 20, "halls and large blocks"
    assert (areas < 60).sum() > 30, "garages and small outbuildings"


def test_storeys_hidden_for_about_a_third(buildings, truth):
    hidden = sum(b["storeys"] is None for b in buildings) / len(buildings)
    assert 0.25 <= hidden <= 0.42
    for b in buildings:
        if b["storeys"] is not None:
            assert b["storeys"] == truth[b["id"]]["storeys"]


def test_heights_are_consistent(buildings, truth):
    for b in buildings:
        t = truth[b["id"]]
        assert 2.0 <= b["eaves_height"] <= b["measured_height"] <= 45.0
        if b["roof_type"] == FLAT:
            assert b["eaves_height"] == b["measured_height"]
        assert 1 <= t["storeys"] <= 12
        full = t["storeys"] - int(t["has_attic_storey"])
        # eaves height: ground floor, upper storeys, parapet/knee wall, ±0.3 m noise
        expected = t["ground_floor_height"] + (full - 1) * t["storey_height"]
        assert expected - 0.35 <= b["eaves_height"] <= expected + 1.6, b["id"]
        if t["has_attic_storey"]:
            assert b["roof_type"] not in (FLAT, SAWTOOTH, MONO)
            assert b["measured_height"] - b["eaves_height"] > 2.5
        if t["has_shop_front"]:
            assert t["ground_floor_height"] >= 3.5
    storey_h = np.array([t["storey_height"] for t in truth.values()])
    assert 2.5 <= storey_h.mean() <= 4.5
    assert storey_h.std() > 0.2, "storey heights vary"
    ratio = np.array([b["measured_height"] / truth[b["id"]]["storeys"] for b in buildings])
    assert np.unique(np.round(ratio, 1)).size > 50, "height / storeys is not a constant"
    assert sum(t["storeys"] >= 9 for t in truth.values()) >= 1, "a few towers"


def test_roofs_follow_the_building_type(buildings, truth):
    for b in buildings:
        kind = truth[b["id"]]["building_type"]
        if kind == "hall":
            assert b["roof_type"] in (FLAT, SAWTOOTH, MONO, GABLE)
            assert 4.7 <= b["measured_height"] <= 10.3
            assert truth[b["id"]]["storeys"] in (1, 2)
        if kind in ("house", "villa"):
            assert truth[b["id"]]["storeys"] <= 4
    gz = [b["roof_type"] for b in buildings if truth[b["id"]]["era"] == "gruenderzeit"]
    assert {"3100", "3400", FLAT} <= set(gz)
    assert any(truth[b["id"]]["has_attic_storey"] for b in buildings)


def test_truth_table_covers_every_building(buildings, truth):
    assert set(truth) == {b["id"] for b in buildings}
    assert all(isinstance(t["storeys"], int) for t in truth.values())
    assert all(t["wkb"] is None for t in truth.values())
    shops = sum(t["has_shop_front"] for t in truth.values())
    assert 40 <= shops <= len(truth) // 3


def test_streets(district: Path):
    streets = read_layer(district, "streets")
    assert len(streets) >= 30
    assert len({s["id"] for s in streets}) == len(streets)
    assert all(re.fullmatch(r"DEMO_STREET_\d{4}", s["id"]) for s in streets)
    assert {s["road_class"] for s in streets} == {"primary", "secondary", "residential", "service"}
    assert all(s["lanes"] >= 1 and s["width"] > 2.5 for s in streets)
    assert len({s["name"] for s in streets}) == len(streets)
    oblique = 0
    for s in streets:
        coords = np.asarray(shape_of(s).coords)
        d = np.diff(coords, axis=0)
        angles = np.degrees(np.arctan2(d[:, 1], d[:, 0])) % 90.0
        oblique += bool(np.any((angles > 1.0) & (angles < 89.0)))
    assert oblique >= 2, "a diagonal and a curved street"


def test_everything_is_marked_as_generated(district: Path, buildings):
    label = f"generated: cut-twin demo (seed={SEED})"
    assert all(b["source"] == label for b in buildings)
    assert all(s["source"] == label for s in read_layer(district, "streets"))


def _raster(path: Path) -> tuple[np.ndarray, dict]:
    with rasterio.open(path) as src:
        return src.read(1), {
            "crs": src.crs.to_epsg(),
            "transform": src.transform,
            "size": (src.width, src.height),
            "dtype": src.dtypes[0],
            "nodata": src.nodata,
            "blocks": src.block_shapes[0],
            "compress": src.compression.value if src.compression else None,
        }


@pytest.fixture(scope="module")
def rasters(district: Path) -> tuple[np.ndarray, np.ndarray]:
    dtm, dtm_meta = _raster(district / "dtm.tif")
    dsm, dsm_meta = _raster(district / "dsm.tif")
    for meta in (dtm_meta, dsm_meta):
        assert meta["crs"] == 25832
        assert meta["size"] == (2500, 2000)
        assert tuple(meta["transform"])[:6] == (1.0, 0.0, 561000.0, 0.0, -1.0, 5935000.0)
        assert meta["dtype"] == "float32" and meta["nodata"] == -9999.0
        assert meta["blocks"] == (256, 256) and meta["compress"] == "DEFLATE"
    return dtm, dsm


def test_terrain_is_gentle(rasters):
    dtm, dsm = rasters
    assert dtm.min() >= 4.0 and dtm.max() <= 26.0
    assert dtm[:200].mean() > dtm[-100:].mean() + 5.0, "falls towards the Elbe in the south"
    slope = np.hypot(*np.gradient(dtm.astype(np.float64)))
    assert slope.max() < 0.2
    assert (dsm >= dtm - 0.3).all()


def _pixel(x: float, y: float) -> tuple[int, int]:
    return int(5935000 - y), int(x - 561000)


def test_dsm_shows_buildings_at_their_height(rasters, buildings):
    dtm, dsm = rasters
    errors_flat, pitched_ok, pitched = [], 0, 0
    for b in buildings:
        geom = shape_of(b)
        if geom.area < 100:
            continue
        p = geom.representative_point()
        r, c = _pixel(p.x, p.y)
        height = float(dsm[r, c] - dtm[r, c])
        if b["roof_type"] == FLAT:
            errors_flat.append(abs(height - b["measured_height"]))
        else:
            pitched += 1
            pitched_ok += b["eaves_height"] - 1.5 <= height <= b["measured_height"] + 1.5
    assert max(errors_flat) <= 1.5
    assert pitched_ok / pitched > 0.95


def test_dsm_has_trees_outside_buildings(rasters, buildings):
    dtm, dsm = rasters
    shapes = [(shape_of(b).buffer(1.0), 1) for b in buildings]
    built = rasterize(
        shapes, out_shape=dtm.shape, transform=rasterio.transform.from_origin(561000, 5935000, 1, 1)
    )
    tall = (dsm - dtm > 5.0) & (built == 0)
    assert tall.sum() > 20000
    assert (dsm - dtm)[tall].max() < 21.0, "trees are 8-20 m"


def test_facade_images_and_labels(district: Path, buildings, truth):
    labels = json.loads((district / "facades" / "labels.json").read_text(encoding="utf-8"))
    with_image = {b["facade_image"]: b for b in buildings if b["facade_image"] is not None}
    assert len(with_image) >= 300
    assert set(labels) == set(with_image)
    kinds = {truth[b["id"]]["building_type"] for b in with_image.values()}
    assert {"gz_row", "hall"} <= kinds and kinds & {"house", "villa"}
    for image_id, label in labels.items():
        b = with_image[image_id]
        t = truth[b["id"]]
        assert label["building_id"] == b["id"]
        assert label["storeys"] == t["storeys"]
        assert label["has_shop_front"] == t["has_shop_front"]
        assert label["has_attic_storey"] == t["has_attic_storey"]
        rows = label["window_rows"]
        assert len(rows) == t["storeys"]
        assert all(a > b for a, b in itertools.pairwise(rows)), "ground floor first"
        assert all(0 <= y <= label["height"] for y in rows)
        with Image.open(district / "facades" / f"{image_id}.png") as img:
            assert img.format == "PNG"
            assert img.size == (label["width"], label["height"])
    widths = [label["width"] for label in labels.values()]
    assert min(widths) >= 200 and max(widths) <= 640


def test_same_seed_gives_identical_data(district: Path, again: Path):
    for layer in ("buildings", "streets", "buildings_truth"):
        assert read_layer(district, layer) == read_layer(again, layer)
    for name in ("demo.json", "facades/labels.json"):
        assert (district / name).read_bytes() == (again / name).read_bytes()
    for name in ("dtm.tif", "dsm.tif"):
        assert np.array_equal(_raster(district / name)[0], _raster(again / name)[0])


def test_another_seed_gives_another_district(tmp_path_factory: pytest.TempPathFactory, buildings):
    out = tmp_path_factory.mktemp("seed7") / "district"
    manifest = generate_district(out, 7)
    assert manifest["seed"] == 7
    other = read_layer(out, "buildings")
    assert 1900 <= len(other) <= 2300
    assert {b["wkb"] for b in other} != {b["wkb"] for b in buildings}
    assert all(b["source"] == "generated: cut-twin demo (seed=7)" for b in other)
    assert district_exists(out, 7) and not district_exists(out, SEED)


def test_district_exists(district: Path, tmp_path: Path):
    assert district_exists(district, SEED)
    assert not district_exists(district, SEED + 1)
    assert not district_exists(tmp_path / "missing", SEED)
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(district / "demo.json", partial / "demo.json")
    assert not district_exists(partial, SEED), "listed files are missing"
    (partial / "demo.json").write_text("{not json", encoding="utf-8")
    assert not district_exists(partial, SEED)


def test_refuses_to_replace_a_foreign_folder(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileExistsError):
        generate_district(tmp_path, SEED)
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]
