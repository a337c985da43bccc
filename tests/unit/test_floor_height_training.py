"""`cut-twin train floor-count-height --data FILE`: a city retrains on its own buildings."""

from __future__ import annotations

import json

import fiona
import numpy as np
import shapely
from click.testing import CliRunner

from cut_processes.analysis import floors
from cut_processes.cli import main
from cut_processes.ml import registry


def test_retrain_on_a_city_file_writes_a_model_and_card(tmp_path, demo_dir, monkeypatch):
    # "The city's data": 400 demo buildings with known storeys, without rasters beside them.
    city = tmp_path / "city" / "my_buildings.gpkg"
    city.parent.mkdir()
    with fiona.open(demo_dir / "district.gpkg", layer="buildings") as src:
        rows = [f for f in src if f.properties["storeys"] is not None][:400]
        with fiona.open(city, "w", driver="GPKG", crs=src.crs, schema=src.schema) as dst:
            dst.writerecords(rows)
    out = tmp_path / "models"
    result = CliRunner().invoke(
        main, ["train", "floor-count-height", "--data", str(city), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    card = json.loads((out / "floor-count-height.card.json").read_text())
    assert card["training_data"]["buildings_with_known_storeys"] == 400
    assert card["training_data"]["raster_evidence"] is False
    assert card["evaluation"].startswith("5-fold cross-validation")
    cv = card["metrics"]["attributes and raster"]
    assert cv["n"] == 400
    assert cv["exact"] > card["baseline"]["exact"]  # better than the storey-height rule
    assert card["onnx_agreement"] == 1.0
    # A city points CUT_MODELS_DIR at its folder: the registry then serves its model.
    monkeypatch.setenv("CUT_MODELS_DIR", str(out))
    registry.clear_cache()
    try:
        model = registry.get_model("floor-count-height")
        assert model.card.sha256 == card["sha256"]
        geometry = shapely.geometry.shape(rows[0].geometry)
        b = floors.Buildings.from_records(["x"], np.array([geometry]), [dict(rows[0].properties)])
        probs = model.run(floors.height_features(b, None))["probabilities"]
        assert probs.shape == (1, len(card["labels"]))
    finally:
        registry.clear_cache()
