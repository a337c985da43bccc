"""The HTML pages, rendered by headless Chromium (Debian's `chromium`), show their content.

Chromium runs the pages' JavaScript (the item map, the tables), so this checks what a person
sees, not only that the server answers 200.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

pytestmark = pytest.mark.e2e

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=8000",
]


@pytest.fixture(scope="module")
def chromium(tmp_path_factory) -> list[str]:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("chromium not installed: `make test` installs Debian's chromium")
    profile = tmp_path_factory.mktemp("chromium-profile")
    return [path, *CHROMIUM_FLAGS, f"--user-data-dir={profile}"]


def rendered(chromium: list[str], url: str) -> str:
    result = subprocess.run([*chromium, "--dump-dom", url], capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/", ["Connected Urban Twins processes", "Collections", "Processes"]),
        ("/collections", ["Buildings (generated demo district)",
                          "Streets (generated demo district)", "contributions"]),
        ("/collections/buildings", ["Buildings (generated demo district)", "Queryables"]),
        ("/collections/streets", ["Streets (generated demo district)"]),
        ("/collections/contributions", ["contributions"]),
        ("/processes", ["Echo", "Floor counting"]),
        ("/processes/echo", ["Echo", "message"]),
        ("/processes/floor-count", ["Floor counting", "buildings", "height_raster"]),
        ("/conformance", ["ogcapi-features-3/1.0/conf/filter", "cql2/1.0/conf/cql2-text"]),
        ("/jobs", ["Jobs"]),
    ],
)
def test_page_shows_its_content(live_server, chromium, path, expected):
    html = rendered(chromium, f"{live_server.url}{path}?f=html")
    for text in expected:
        assert text in html, f"{path}: {text!r} not rendered"


@pytest.mark.parametrize("collection", ["buildings", "streets"])
def test_items_page_has_a_map_with_the_features(live_server, chromium, collection):
    html = rendered(chromium, f"{live_server.url}/collections/{collection}/items?f=html&limit=5")
    assert 'id="items-map"' in html
    # Leaflet ran and drew the features as SVG paths on the map.
    assert "leaflet-container" in html
    assert html.count("leaflet-interactive") >= 5
    prefix = "DEHH_DEMO_" if collection == "buildings" else "DEMO_STREET_"
    assert html.count(prefix) >= 5


def test_item_page(live_server, chromium):
    url = f"{live_server.url}/collections/buildings/items/DEHH_DEMO_000002?f=html"
    html = rendered(chromium, url)
    assert "DEHH_DEMO_000002" in html
    assert "function_name" in html
    assert "leaflet-container" in html
