"""GDAL's ogrinfo reads filtered collections from a live server, on both stores.

GDAL 3.6's OAPIF driver sends an attribute filter as CQL text (``filter=...&filter-lang=
cql-text``) when the configuration option OGR_OAPIF_ALLOW_CQL_TEXT is set (it predates the
final conformance classes); without it, it sends only equality filters as query parameters
and evaluates the rest itself. Query parameters in the dataset URL (``?filter=...``) are sent
with every request.
"""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from pathlib import Path

import fiona
import pytest
import requests

pytestmark = pytest.mark.e2e

WHERE = "storeys > 3 AND function_name LIKE 'Wohn%'"


@pytest.fixture(scope="module")
def ogrinfo() -> str:
    path = shutil.which("ogrinfo")
    if path is None:
        pytest.fail("ogrinfo not installed: `make test` installs Debian's gdal-bin")
    return path


@pytest.fixture(scope="module")
def expected_count(demo_dir: Path) -> int:
    """The matching buildings, counted independently (fiona reads the demo GeoPackage)."""
    with fiona.open(demo_dir / "district.gpkg", layer="buildings") as layer:
        return sum(
            1
            for r in layer
            if (r.properties["storeys"] or 0) > 3
            and str(r.properties["function_name"]).startswith("Wohn")
        )


@pytest.fixture(params=["geopackage", "postgis"])
def server(request):
    """The live server on the GeoPackage store, then one on PostGIS."""
    if request.param == "geopackage":
        return request.getfixturevalue("live_server")
    return request.getfixturevalue("postgis_live_server")


def run(argv: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=True)


def test_server_counts_the_filter(server, expected_count):
    response = requests.get(
        f"{server.url}/collections/buildings/items",
        params={"filter": WHERE, "resulttype": "hits"},
        timeout=30,
    )
    assert response.status_code == 200
    assert expected_count > 0
    assert response.json()["numberMatched"] == expected_count


def test_ogrinfo_where_is_sent_to_the_server(server, ogrinfo, expected_count):
    out = run([ogrinfo, "--config", "OGR_OAPIF_ALLOW_CQL_TEXT", "YES", "--debug", "on", "-ro",
               "-so", "-oo", "PAGE_SIZE=1000", f"OAPIF:{server.url}", "buildings",
               "-where", WHERE])  # fmt: skip
    assert f"Feature Count: {expected_count}" in out.stdout
    fetches = [line for line in out.stderr.splitlines() if "Fetch(" in line and "items" in line]
    assert any("filter=" in line and "filter-lang=cql-text" in line for line in fetches), fetches
    assert "evaluated on client side" not in out.stderr


def test_ogrinfo_with_the_filter_in_the_url(server, ogrinfo, expected_count):
    query = urllib.parse.urlencode({"filter": WHERE}, quote_via=urllib.parse.quote)
    url = f"OAPIF:{server.url}/collections/buildings?{query}"
    out = run([ogrinfo, "-ro", "-al", "-q", "-geom=NO", "-oo", "PAGE_SIZE=500", url])
    assert out.stdout.count("OGRFeature(buildings)") == expected_count
    assert out.stdout.count("function_name (String) = Wohn") == expected_count
