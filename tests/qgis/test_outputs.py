"""Results into QGIS: a floor-count-shaped FeatureCollection becomes a typed layer, results
responses are split per output, published collections are found."""

from __future__ import annotations

import json

from cut_processing.outputs import find_published, split_results
from cut_processing.schema_mapping import classify_output

FLOOR_COUNT_RESULT = {
    "type": "FeatureCollection",
    "features": [
        {"type": "Feature", "id": "a",
         "geometry": {"type": "Polygon", "coordinates": [
             [[9.93, 53.54], [9.931, 53.54], [9.931, 53.541], [9.93, 53.54]]]},
         "properties": {"id": "a", "storeys_estimated": 3, "storeys_range": [2, 4],
                        "confidence": 0.9, "method": "height", "needs_review": False,
                        "explanation": [{"factor": "height", "weight": 0.7}],
                        "year_built": None}},
        {"type": "Feature", "id": "b",
         "geometry": {"type": "MultiPolygon", "coordinates": [
             [[[9.94, 53.54], [9.941, 53.54], [9.941, 53.541], [9.94, 53.54]]]]},
         "properties": {"id": "b", "storeys_estimated": None, "storeys_range": None,
                        "confidence": 1, "method": "none", "needs_review": True,
                        "explanation": [], "year_built": 1990}},
    ],
}
OUTPUTS = [classify_output("buildings", {"schema": {
    "type": "object", "contentMediaType": "application/geo+json"}}),
    classify_output("summary", {"schema": {"type": "object"}})]


def test_feature_collection_to_typed_layer(qgis_app):
    from cut_processing.algorithm import OgcProcessAlgorithm
    from cut_processing.outputs import write_vector
    from cut_processing.server import Server
    from qgis.core import QgsProcessingContext, QgsProcessingUtils, QgsWkbTypes
    from qgis.PyQt.QtCore import QVariant

    algorithm = OgcProcessAlgorithm(Server("cut", "http://127.0.0.1:9"), {
        "id": "floor-count", "inputs": {},
        "outputs": {"buildings": {"schema": {"type": "object",
                                             "contentMediaType": "application/geo+json"}}}})
    algorithm.initAlgorithm()
    context = QgsProcessingContext()
    dest = write_vector(algorithm, {"OUTPUT_buildings": "TEMPORARY_OUTPUT"}, context,
                        algorithm.output_specs[0], FLOOR_COUNT_RESULT)
    layer = QgsProcessingUtils.mapLayerFromString(dest, context)
    assert layer.featureCount() == 2
    assert layer.wkbType() == QgsWkbTypes.MultiPolygon
    assert layer.crs().authid() == "EPSG:4326"
    fields = layer.fields()
    types = {f.name(): f.type() for f in fields}
    assert types["storeys_estimated"] == QVariant.Int
    assert types["confidence"] == QVariant.Double  # 0.9 and 1 -> double
    assert types["needs_review"] == QVariant.Bool
    assert types["method"] == QVariant.String
    assert types["storeys_range"] == QVariant.String  # JSON text
    assert types["year_built"] == QVariant.Int
    features = {f["id"]: f for f in layer.getFeatures()}
    assert features["a"]["storeys_estimated"] == 3
    assert json.loads(features["a"]["storeys_range"]) == [2, 4]
    assert json.loads(features["a"]["explanation"])[0]["factor"] == "height"
    assert features["b"]["confidence"] == 1.0
    assert features["b"]["needs_review"] is True
    assert not features["a"].geometry().isNull()


def test_split_results():
    raw = json.dumps({"buildings": FLOOR_COUNT_RESULT, "summary": {"n": 2}}).encode()
    values = split_results("application/json", raw, OUTPUTS)
    assert values["summary"] == {"n": 2}
    # One raw output (not keyed by output id) goes to the first output.
    assert split_results("application/geo+json", json.dumps(FLOOR_COUNT_RESULT).encode(),
                         OUTPUTS) == {"buildings": FLOOR_COUNT_RESULT}
    document = {"outputs": [{"id": "summary", "value": {"n": 1}}]}
    assert split_results("application/json", json.dumps(document).encode(), OUTPUTS) == \
        {"summary": {"n": 1}}
    assert list(split_results("image/tiff", b"II*\x00rest", OUTPUTS)) == ["buildings"]


def test_find_published():
    summary = {"count": 2, "published": {
        "collection": "floor-count-results", "count": 2,
        "href": "http://127.0.0.1:5000/collections/floor-count-results/items?job_id=abc"}}
    assert [p["collection"] for p in find_published(summary)] == ["floor-count-results"]
    assert find_published({"collection": "x", "href": "http://h/other"}) == []


def test_geotiff_output_written_to_raster_destination(qgis_app, tmp_path):
    import base64

    from cut_processing.algorithm import OgcProcessAlgorithm
    from cut_processing.outputs import write_raster
    from cut_processing.server import Server
    from qgis.core import QgsProcessingContext

    algorithm = OgcProcessAlgorithm(Server("cut", "http://127.0.0.1:9"), {
        "id": "dsm", "inputs": {},
        "outputs": {"dsm": {"schema": {"type": "string", "contentMediaType": "image/tiff"}}}})
    algorithm.initAlgorithm()
    spec = algorithm.output_specs[0]
    assert algorithm.parameterDefinition(spec.name).type() == "rasterDestination"
    target = tmp_path / "dsm.tif"
    tiff = b"II*\x00" + bytes(range(64))
    written = write_raster(algorithm, {spec.name: str(target)}, QgsProcessingContext(), spec,
                           base64.b64encode(tiff).decode(), client=None)
    assert written == str(target)
    assert target.read_bytes() == tiff
