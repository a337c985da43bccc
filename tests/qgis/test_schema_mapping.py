"""JSON Schema -> QGIS parameter mapping, on the suite's own process descriptions and on
schemas that must degrade to a JSON text field."""

from __future__ import annotations

import pytest
from cut_processing import schema_mapping as sm


def test_echo_inputs():
    message = sm.classify("message", {"title": "Message", "schema": {"type": "string"},
                                      "minOccurs": 1})
    assert (message.kind, message.optional, message.title) == (sm.STRING, False, "Message")
    pause = sm.classify("pause", {"schema": {"type": "number", "minimum": 0, "maximum": 600,
                                             "default": 0}, "minOccurs": 0})
    assert (pause.kind, pause.minimum, pause.maximum, pause.default, pause.optional) == \
        (sm.NUMBER, 0.0, 600.0, 0, True)


def test_floor_count_inputs():
    buildings = sm.classify("buildings", {
        "schema": {"type": "object", "contentMediaType": "application/geo+json"}})
    assert buildings.kind == sm.FEATURES and not buildings.optional
    method = sm.classify("method", {"schema": {"type": "string", "enum": ["auto", "height"],
                                               "default": "auto"}, "minOccurs": 0})
    assert (method.kind, method.options, method.default) == (sm.ENUM, ["auto", "height"], "auto")
    publish = sm.classify("publish", {"schema": {"type": "boolean", "default": False}})
    assert publish.kind == sm.BOOLEAN and publish.optional
    ref = {"oneOf": [{"type": "string"},
                     {"type": "object", "properties": {"href": {"type": "string"}}}]}
    assert sm.classify("dsm", {"schema": ref}).kind == sm.RASTER_REF
    height = sm.classify("height_raster", {"schema": {"oneOf": [
        {"type": "string"},
        {"type": "object", "properties": {"ndsm": ref}, "required": ["ndsm"]}]}, "minOccurs": 0})
    assert height.kind == sm.STRING_OR_JSON and height.optional


@pytest.mark.parametrize(("schema", "kind"), [
    ({"type": "integer", "minimum": 1}, sm.INTEGER),
    ({"type": "string", "format": "date"}, sm.DATE),
    ({"type": "string", "format": "date-time"}, sm.DATETIME),
    ({"type": "object", "properties": {"bbox": {"type": "array"}, "crs": {"type": "string"}}},
     sm.BBOX),
    ({"$ref": "http://schemas.opengis.net/ogcapi/processes/part1/1.0/openapi/schemas/bbox.yaml"},
     sm.BBOX),
    ({"type": "string", "contentMediaType": "image/tiff; application=geotiff"}, sm.RASTER),
    ({"type": "object", "properties": {"type": {"enum": ["FeatureCollection"]}}}, sm.FEATURES),
    ({"type": "array", "items": {"type": "number"}}, sm.JSON),
    ({"allOf": [{"type": "string"}, {"maxLength": 3}]}, sm.JSON),
    ({"type": ["string", "null"]}, sm.JSON),
    ({}, sm.JSON),
    ("not a schema", sm.JSON),
])
def test_kinds(schema, kind):
    assert sm.classify("x", {"schema": schema}).kind == kind


def test_several_values_degrade_to_json():
    spec = sm.classify("ids", {"schema": {"type": "string"}, "maxOccurs": 5})
    assert spec.kind == sm.JSON


def test_parameter_names_and_output_kinds():
    assert sm.parameter_name("height-raster.v2") == "height_raster_v2"
    assert sm.parameter_name("3d") == "_3d"
    geo = sm.classify_output("buildings", {"schema": {
        "type": "object", "contentMediaType": "application/geo+json"}})
    assert (geo.kind, geo.name) == ("vector", "OUTPUT_buildings")
    assert sm.classify_output("message", {"schema": {
        "type": "string", "contentMediaType": "text/plain"}}).kind == "text"
    assert sm.classify_output("summary", {"schema": {
        "type": "object", "contentMediaType": "application/json"}}).kind == "json"
    assert sm.classify_output("dsm", {"schema": {
        "type": "string", "contentMediaType": "image/tiff"}}).kind == "raster"


def test_json_text():
    assert sm.parse_json_text('{"ndsm": "demo"}') == {"ndsm": "demo"}
    assert sm.parse_json_text("demo") == "demo"
    assert sm.parse_json_text("  ") is None


def test_raster_href():
    assert sm.raster_href("/vsicurl/https://example.org/dsm.tif") == "https://example.org/dsm.tif"
    with pytest.raises(ValueError, match="local raster"):
        sm.raster_href("/data/dsm.tif")


@pytest.mark.parametrize("kind", [
    sm.FEATURES, sm.NUMBER, sm.INTEGER, sm.ENUM, sm.BOOLEAN, sm.STRING, sm.DATE, sm.DATETIME,
    sm.BBOX, sm.RASTER, sm.RASTER_REF, sm.STRING_OR_JSON, sm.JSON])
def test_every_kind_makes_a_parameter(qgis_app, kind):
    spec = sm.InputSpec("x-1", "x_1", kind, "X", "help", True, None, ["a", "b"], 0.0, 10.0)
    param = sm.make_parameter(spec)
    assert param.name() == "x_1"
    assert param.description() == "X"
    assert param.flags() & param.FlagOptional


def test_request_values_from_qgis_parameters(qgis_app):
    """What QGIS hands the algorithm becomes the request value of each kind of input."""
    from cut_processing.algorithm import OgcProcessAlgorithm
    from cut_processing.server import Server
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback
    from qgis.PyQt.QtCore import QDate, QDateTime, Qt, QTime

    description = {"id": "kinds", "outputs": {}, "inputs": {
        "day": {"schema": {"type": "string", "format": "date"}},
        "moment": {"schema": {"type": "string", "format": "date-time"}},
        "area": {"schema": {"type": "object", "properties": {"bbox": {}, "crs": {}}}},
        "count": {"schema": {"type": "integer", "minimum": 1, "maximum": 10}},
        "mode": {"schema": {"type": "string", "enum": ["a", "b"]}},
        "flag": {"schema": {"type": "boolean"}},
        "options": {"schema": {"type": "array", "items": {"type": "number"}}},
        "raster": {"schema": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {
            "ndsm": {"type": "string"}}}]}},
        "dsm": {"schema": {"oneOf": [{"type": "string"}, {"type": "object", "properties": {
            "href": {"type": "string"}}}]}},
        "note": {"schema": {"type": "string"}, "minOccurs": 0},
    }}
    algorithm = OgcProcessAlgorithm(Server("t", "http://127.0.0.1:9"), description)
    algorithm.initAlgorithm()
    parameters = {
        "day": QDate(2026, 11, 26),
        "moment": QDateTime(QDate(2026, 11, 26), QTime(8, 30), Qt.UTC),
        "area": "566000,567000,5933000,5934000 [EPSG:25832]",
        "count": 3, "mode": 1, "flag": True, "options": "[1, 2.5]",
        "raster": '{"ndsm": "demo"}', "dsm": "https://example.org/dsm.tif", "note": None,
    }
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    ok, problem = algorithm.checkParameterValues(parameters, context)
    assert ok, problem
    values = {spec.input_id: sm.to_request_value(spec, algorithm, parameters, context, feedback)
              for spec in algorithm.input_specs}
    assert values["day"] == "2026-11-26"
    assert values["moment"] == "2026-11-26T08:30:00Z"
    bbox = values["area"]["bbox"]
    assert values["area"]["crs"] == sm.CRS84
    assert 9.9 < bbox[0] < bbox[2] < 10.1 and 53.5 < bbox[1] < bbox[3] < 53.6
    assert values["count"] == 3 and isinstance(values["count"], int)
    assert values["mode"] == "b"
    assert values["flag"] is True
    assert values["options"] == [1, 2.5]
    assert values["raster"] == {"ndsm": "demo"}
    assert values["dsm"] == {"href": "https://example.org/dsm.tif"}
    assert values["note"] is None
    # Out of bounds: QGIS refuses before anything is sent.
    assert not algorithm.checkParameterValues({**parameters, "count": 11}, context)[0]
