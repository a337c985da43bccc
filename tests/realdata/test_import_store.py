"""``cut-twin import`` of the real files into a GeoPackage store, and reading them back."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from cut_processes.cli import main
from cut_processes.io.store import open_store

pytestmark = pytest.mark.realdata


def test_real_files_import_idempotently_and_are_served(io_shared_data, tmp_path):
    store = tmp_path / "store.gpkg"
    runner = CliRunner()
    imports = [
        (["citygml", *sorted(map(str, (io_shared_data / "buildings").glob("*.gml")))],
         "buildings-hh", 4),
        (["station-geojson", str(io_shared_data / "bike" / "hamburg_counting_stations.geojson")],
         "traffic-counting-stations", 236),
        (["cimt", str(io_shared_data / "participation" / "dipas_ottensen_thematic.csv")],
         "contributions", 483),
        (["munich-counts", str(io_shared_data / "bike" / "munich_counters_daily_2017_2023.csv")],
         "counts", 30280),
    ]  # fmt: skip
    for args, collection, expected in imports:
        for _ in range(2):  # a second import replaces the first
            result = runner.invoke(
                main, ["import", *args, "--collection", collection, "--store", str(store)]
            )
            assert result.exit_code == 0, result.output
            assert f"{expected} features written to collection {collection!r}" in result.output
        assert open_store(store).count(collection) == expected
    stations = runner.invoke(main, ["import", *imports[1][0], "--store", str(store)])
    assert "3 rejected" in stations.output and "ambiguous" in stations.output

    from cut_processes.providers import FeatureProvider

    provider = FeatureProvider({
        "name": "cut_processes.providers.FeatureProvider", "type": "feature", "data": str(store),
        "table": "buildings-hh", "id_field": "id",
        "storage_crs": "http://www.opengis.net/def/crs/EPSG/0/25832",
    })  # fmt: skip
    page = provider.query(properties=[("roof_type", "1000")])
    assert [f["id"] for f in page["features"]] == ["DEHHALKA3kW000EP"]
    assert page["features"][0]["properties"]["ridge_height"] == pytest.approx(9.0)
