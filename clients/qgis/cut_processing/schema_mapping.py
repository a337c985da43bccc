"""JSON Schema of a process input -> the kind of QGIS Processing parameter that edits it.

:func:`classify` is pure Python (testable without QGIS): it answers an :class:`InputSpec`.
:func:`make_parameter` turns a spec into a ``QgsProcessingParameter*`` and
:func:`to_request_value` turns what QGIS hands the algorithm back into the request value.
Schemas that fit no kind become a JSON text field (``json``), never an error.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

GEOJSON_TYPES = ("application/geo+json", "application/vnd.geo+json")
RASTER_TYPES = ("image/tiff", "image/tiff; application=geotiff",
                "application/x-geotiff", "image/geotiff")
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"

# Kinds of inputs: each maps to one QGIS parameter class.
FEATURES = "features"      # QgsProcessingParameterFeatureSource -> GeoJSON in CRS84
NUMBER = "number"          # QgsProcessingParameterNumber (Double)
INTEGER = "integer"        # QgsProcessingParameterNumber (Integer)
ENUM = "enum"              # QgsProcessingParameterEnum
BOOLEAN = "boolean"        # QgsProcessingParameterBoolean
STRING = "string"          # QgsProcessingParameterString
DATE = "date"              # QgsProcessingParameterDateTime (Date)
DATETIME = "datetime"      # QgsProcessingParameterDateTime (DateTime)
BBOX = "bbox"              # QgsProcessingParameterExtent -> {"bbox": [...], "crs": CRS84}
RASTER = "raster"          # QgsProcessingParameterRasterLayer -> {"href": url}
RASTER_REF = "raster_ref"  # String: a server raster id, or a raster layer served over http(s)
STRING_OR_JSON = "string_or_json"  # String: a plain id, or JSON text for object alternatives
JSON = "json"              # multi-line String holding JSON text


@dataclass
class InputSpec:
    """How one process input is edited in QGIS."""

    input_id: str
    name: str
    kind: str
    title: str
    description: str = ""
    optional: bool = False
    default: Any = None
    options: list[Any] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None


@dataclass
class OutputSpec:
    """How one process output is delivered in QGIS: ``vector``, ``raster``, ``text``, ``json``."""

    output_id: str
    name: str
    kind: str
    title: str
    description: str = ""


def parameter_name(input_id: str) -> str:
    """A QGIS parameter name for an input id (letters, digits, underscores)."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", input_id)
    return name if name and not name[0].isdigit() else f"_{name}"


def _text(value: Any) -> str:
    if isinstance(value, dict):  # pygeoapi may leave {"en": ..., "de": ...}
        return str(value.get("en") or next(iter(value.values()), ""))
    return "" if value is None else str(value)


def _media(schema: dict[str, Any]) -> str:
    return str(schema.get("contentMediaType") or "").lower()


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    for key in ("oneOf", "anyOf"):
        if isinstance(schema.get(key), list):
            return [s for s in schema[key] if isinstance(s, dict)]
    return []


def is_geojson(schema: dict[str, Any], description: str = "") -> bool:
    if _media(schema) in GEOJSON_TYPES:
        return True
    if any(is_geojson(alt) for alt in _alternatives(schema)):
        return True
    ref = str(schema.get("$ref") or "")
    if "featureCollectionGeoJSON" in ref or "FeatureCollection" in ref:
        return True
    props = schema.get("properties") or {}
    type_enum = (props.get("type") or {}).get("enum") if isinstance(props, dict) else None
    if type_enum and "FeatureCollection" in type_enum:
        return True
    return schema.get("type") == "object" and "FeatureCollection" in description


def is_bbox(schema: dict[str, Any]) -> bool:
    ref = str(schema.get("$ref") or "")
    if schema.get("format") == "ogc-bbox" or ref.endswith(("bbox.yaml", "bbox.json", "/bbox")):
        return True
    props = schema.get("properties")
    return isinstance(props, dict) and "bbox" in props and schema.get("type") == "object" \
        and set(props) <= {"bbox", "crs"}


def _is_href_object(schema: dict[str, Any]) -> bool:
    props = schema.get("properties")
    return schema.get("type") == "object" and isinstance(props, dict) and "href" in props


def is_raster(schema: dict[str, Any]) -> bool:
    return _media(schema) in RASTER_TYPES or any(
        _media(alt) in RASTER_TYPES for alt in _alternatives(schema))


def classify(input_id: str, description: dict[str, Any]) -> InputSpec:
    """The :class:`InputSpec` of one entry of a process description's ``inputs``."""
    schema = description.get("schema")
    schema = schema if isinstance(schema, dict) else {}
    title = _text(description.get("title")) or input_id
    text = _text(description.get("description"))
    min_occurs = description.get("minOccurs", 1)
    optional = min_occurs == 0 or "default" in schema
    spec = InputSpec(input_id, parameter_name(input_id), JSON, title, text, optional,
                     schema.get("default"))
    max_occurs = description.get("maxOccurs", 1)
    if max_occurs not in (1, None):
        return spec  # several values: JSON array text
    kind = schema.get("type")
    alternatives = _alternatives(schema)
    if is_geojson(schema, text):
        spec.kind = FEATURES
    elif is_bbox(schema):
        spec.kind = BBOX
    elif is_raster(schema):
        spec.kind = RASTER
    elif "enum" in schema and kind in (None, "string", "integer", "number") \
            and all(isinstance(v, (str, int, float)) for v in schema["enum"]):
        spec.kind = ENUM
        spec.options = list(schema["enum"])
    elif kind == "boolean":
        spec.kind = BOOLEAN
    elif kind in ("number", "integer"):
        spec.kind = INTEGER if kind == "integer" else NUMBER
        spec.minimum = _bound(schema, "minimum", "exclusiveMinimum")
        spec.maximum = _bound(schema, "maximum", "exclusiveMaximum")
    elif kind == "string" and schema.get("format") == "date":
        spec.kind = DATE
    elif kind == "string" and schema.get("format") == "date-time":
        spec.kind = DATETIME
    elif kind == "string" and not _media(schema):
        spec.kind = STRING
    elif alternatives and any(a.get("type") == "string" for a in alternatives):
        objects = [a for a in alternatives if a.get("type") == "object"]
        if objects and all(_is_href_object(o) for o in objects):
            spec.kind = RASTER_REF
        else:
            spec.kind = STRING_OR_JSON
    return spec


def _bound(schema: dict[str, Any], key: str, exclusive: str) -> float | None:
    value = schema.get(key, schema.get(exclusive))
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def classify_output(output_id: str, description: dict[str, Any]) -> OutputSpec:
    schema = description.get("schema")
    schema = schema if isinstance(schema, dict) else {}
    title = _text(description.get("title")) or output_id
    spec = OutputSpec(output_id, "OUTPUT_" + parameter_name(output_id), "json", title,
                      _text(description.get("description")))
    if is_geojson(schema, spec.description):
        spec.kind = "vector"
    elif is_raster(schema):
        spec.kind = "raster"
    elif schema.get("type") in ("string", "number", "integer", "boolean") and \
            _media(schema) in ("", "text/plain"):
        spec.kind = "text"
    return spec


def parse_json_text(text: str) -> Any:
    """JSON text typed by the user; text that is no JSON is sent as a string."""
    stripped = text.strip()
    if not stripped:
        return None
    try:
        return json.loads(stripped)
    except ValueError:
        return stripped


# -- QGIS side ------------------------------------------------------------------------------
def make_parameter(spec: InputSpec):
    """The ``QgsProcessingParameterDefinition`` for a spec (QGIS 3.22+)."""
    from qgis.core import (
        QgsProcessing,
        QgsProcessingParameterBoolean,
        QgsProcessingParameterDateTime,
        QgsProcessingParameterDefinition,
        QgsProcessingParameterEnum,
        QgsProcessingParameterExtent,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
        QgsProcessingParameterString,
    )

    label = spec.title
    default = spec.default
    if spec.kind == FEATURES:
        param = QgsProcessingParameterFeatureSource(
            spec.name, label, [QgsProcessing.TypeVectorAnyGeometry], None, spec.optional)
    elif spec.kind in (NUMBER, INTEGER):
        number_type = (QgsProcessingParameterNumber.Integer if spec.kind == INTEGER
                       else QgsProcessingParameterNumber.Double)
        param = QgsProcessingParameterNumber(
            spec.name, label, number_type,
            default if isinstance(default, (int, float)) else None, spec.optional,
            spec.minimum if spec.minimum is not None else -1.7976931348623157e308,
            spec.maximum if spec.maximum is not None else 1.7976931348623157e308)
    elif spec.kind == ENUM:
        options = [str(o) for o in spec.options]
        index = spec.options.index(default) if default in spec.options else None
        param = QgsProcessingParameterEnum(spec.name, label, options, False, index,
                                           spec.optional)
    elif spec.kind == BOOLEAN:
        param = QgsProcessingParameterBoolean(spec.name, label, bool(default), spec.optional)
    elif spec.kind in (DATE, DATETIME):
        mode = (QgsProcessingParameterDateTime.Date if spec.kind == DATE
                else QgsProcessingParameterDateTime.DateTime)
        param = QgsProcessingParameterDateTime(spec.name, label, mode, None, spec.optional)
    elif spec.kind == BBOX:
        param = QgsProcessingParameterExtent(spec.name, label, None, spec.optional)
    elif spec.kind == RASTER:
        param = QgsProcessingParameterRasterLayer(spec.name, label, None, spec.optional)
    elif spec.kind == STRING or spec.kind in (RASTER_REF, STRING_OR_JSON):
        param = QgsProcessingParameterString(
            spec.name, label, default if isinstance(default, str) else None, False,
            spec.optional)
    else:
        text = json.dumps(default) if default is not None else None
        param = QgsProcessingParameterString(spec.name, label, text, True, spec.optional)
    help_text = spec.description
    if spec.kind == RASTER_REF:
        help_text += " (a server raster id, or the http(s) URL of a GeoTIFF)"
    elif spec.kind in (STRING_OR_JSON, JSON):
        help_text += " (JSON text)" if spec.kind == JSON else " (an id, or JSON text)"
    param.setHelp(help_text)
    if spec.optional:
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagOptional)
    return param


def to_request_value(spec: InputSpec, algorithm, parameters, context, feedback) -> Any:
    """The request value of an input, or ``None`` when it is not set (left out)."""
    if parameters.get(spec.name) is None:
        return None
    if spec.kind == FEATURES:
        from .geojson import source_to_feature_collection

        source = algorithm.parameterAsSource(parameters, spec.name, context)
        if source is None:
            return None
        return source_to_feature_collection(source, context, feedback)
    if spec.kind in (NUMBER, INTEGER):
        value = algorithm.parameterAsDouble(parameters, spec.name, context)
        return int(value) if spec.kind == INTEGER else value
    if spec.kind == ENUM:
        index = algorithm.parameterAsEnum(parameters, spec.name, context)
        return spec.options[index] if 0 <= index < len(spec.options) else None
    if spec.kind == BOOLEAN:
        return algorithm.parameterAsBool(parameters, spec.name, context)
    if spec.kind in (DATE, DATETIME):
        value = algorithm.parameterAsDateTime(parameters, spec.name, context)
        if value is None or not value.isValid():
            return None
        if spec.kind == DATE:
            return value.date().toString("yyyy-MM-dd")
        return value.toUTC().toString("yyyy-MM-ddTHH:mm:ssZ")
    if spec.kind == BBOX:
        from qgis.core import QgsCoordinateReferenceSystem

        crs84 = QgsCoordinateReferenceSystem("EPSG:4326")
        rect = algorithm.parameterAsExtent(parameters, spec.name, context, crs84)
        if rect.isNull():
            return None
        return {"bbox": [rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum()],
                "crs": CRS84}
    if spec.kind == RASTER:
        layer = algorithm.parameterAsRasterLayer(parameters, spec.name, context)
        return None if layer is None else {"href": raster_href(layer.source())}
    text = algorithm.parameterAsString(parameters, spec.name, context)
    if spec.kind == STRING:
        return text if text != "" or not spec.optional else None
    if spec.kind == RASTER_REF:
        text = text.strip()
        if not text:
            return None
        return {"href": text} if "://" in text else text
    return parse_json_text(text)


def raster_href(source: str) -> str:
    """The URL a server can fetch for a raster layer source (local files cannot be sent)."""
    url = source.split("|")[0]
    for prefix in ("/vsicurl/", "/vsicurl_streaming/"):
        if url.startswith(prefix):
            url = url[len(prefix):]
    if "://" not in url:
        raise ValueError(
            f"the server cannot read the local raster {url}: give a server raster id or a "
            "raster served over http(s)")
    return url
