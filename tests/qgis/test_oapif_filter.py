"""QGIS's own OAPIF provider against our server, with a subset filter on the layer.

QGIS sends a layer's subset string to the server as CQL2 (``filter=``) from QGIS 3.32 on
(qgis/QGIS#52775), when the server declares the Features Part 3 and CQL2 conformance classes,
as ours does. Older QGIS (Debian bookworm ships 3.22) pages through every feature and filters
on the client. The server's access log names the query parameters of each request, so the
test sees which of the two happened; the features must be exactly the matching ones either way.
"""

from __future__ import annotations

import urllib.parse

from qgis.core import Qgis, QgsFeatureRequest, QgsVectorLayer

#: First QGIS version whose OAPIF provider sends subset strings to the server as CQL2.
SERVER_SIDE_FILTER_SINCE = 33200


def _count(server, query: str) -> int:
    params = urllib.parse.urlencode({"filter": query, "limit": 1, "f": "json"})
    return server.get(f"collections/buildings/items?{params}")["numberMatched"]


def test_subset_filter_gives_exactly_the_matching_features(qgis_app, live_server):
    log_start = live_server.log.stat().st_size
    layer = QgsVectorLayer(f"url='{live_server.url}' typename='buildings'", "buildings", "OAPIF")
    assert layer.isValid(), layer.error().summary()
    assert layer.setSubsetString("storeys = 3 AND roof_type = '1000'")
    ids = {f["id"] for f in layer.getFeatures(QgsFeatureRequest())}

    # The server's access log names the query parameters of every request QGIS made.
    with live_server.log.open(encoding="utf-8", errors="replace") as fh:
        fh.seek(log_start)
        lines = [line for line in fh if " GET /collections/buildings/items " in line]
    expected = _count(live_server, "storeys = 3 AND roof_type = '1000'")
    assert 0 < expected < _count(live_server, "storeys IS NOT NULL")
    assert len(ids) == expected
    assert lines, "QGIS requested no items"
    sent_filter = ["filter" in line.split(" ?", 1)[-1].split()[0] for line in lines]
    if Qgis.QGIS_VERSION_INT >= SERVER_SIDE_FILTER_SINCE:
        assert all(sent_filter), lines
    else:
        # QGIS 3.22: no filter in any request (it filtered the full download itself).
        assert not any(sent_filter), lines


def test_numeric_subset_filter(qgis_app, live_server):
    layer = QgsVectorLayer(f"url='{live_server.url}' typename='buildings'", "b", "OAPIF")
    layer.setSubsetString("year_built < 1900")
    features = list(layer.getFeatures())
    assert features and all(f["year_built"] < 1900 for f in features)
    assert len(features) == _count(live_server, "year_built < 1900")
