"""GeoJSON in and out of QGIS: feature sources to CRS84 FeatureCollections, and result
FeatureCollections to typed QGIS features.
"""

from __future__ import annotations

import json
from typing import Any

#: Decimal places of exported coordinates (CRS84 degrees: 1e-9 deg is ~0.1 mm).
PRECISION = 9


def plain_value(value: Any) -> Any:
    """A QGIS attribute value as plain JSON (NULL -> None, dates -> ISO 8601)."""
    from qgis.PyQt.QtCore import QDate, QDateTime, QTime, QVariant

    if value is None or (isinstance(value, QVariant) and value.isNull()):
        return None
    if isinstance(value, QDateTime):
        return value.toUTC().toString("yyyy-MM-ddTHH:mm:ssZ") if value.isValid() else None
    if isinstance(value, QDate):
        return value.toString("yyyy-MM-dd") if value.isValid() else None
    if isinstance(value, QTime):
        return value.toString("HH:mm:ss") if value.isValid() else None
    if isinstance(value, QVariant):
        return plain_value(value.value())
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).hex()
    return str(value)


def source_to_feature_collection(source, context, feedback=None) -> dict[str, Any]:
    """A feature source (selection honoured by QGIS) as a GeoJSON FeatureCollection in CRS84."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsFeatureRequest

    crs84 = QgsCoordinateReferenceSystem("EPSG:4326")
    request = QgsFeatureRequest()
    if source.sourceCrs().isValid() and source.sourceCrs() != crs84:
        request.setDestinationCrs(crs84, context.transformContext())
    names = source.fields().names()
    features: list[dict[str, Any]] = []
    for feature in source.getFeatures(request):
        if feedback is not None and feedback.isCanceled():
            break
        geometry = feature.geometry()
        props = {name: plain_value(feature.attribute(name)) for name in names}
        item: dict[str, Any] = {
            "type": "Feature",
            "geometry": None if geometry.isNull() else json.loads(geometry.asJson(PRECISION)),
            "properties": props,
        }
        if "id" in props and props["id"] is not None:
            item["id"] = props["id"]
        else:
            item["id"] = feature.id()
        features.append(item)
    return {"type": "FeatureCollection", "features": features}


def _kind(values: list[Any]) -> str:
    kinds = set()
    for value in values:
        if value is None:
            continue
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            kinds.add("int")
        elif isinstance(value, float):
            kinds.add("double")
        elif isinstance(value, str):
            kinds.add("string")
        else:
            kinds.add("json")
    if not kinds:
        return "string"
    if kinds == {"int"}:
        big = any(abs(v) > 2**31 - 1 for v in values if isinstance(v, int))
        return "int64" if big else "int"
    if kinds <= {"int", "double"}:
        return "double"
    if len(kinds) == 1:
        return kinds.pop()
    return "json" if "json" in kinds else "string"


def collection_fields(collection: dict[str, Any]) -> tuple[Any, dict[str, str]]:
    """``QgsFields`` typed from the values of a FeatureCollection's properties.

    Integers -> Int (or LongLong), numbers -> Double, booleans -> Bool, text -> String,
    lists and objects -> String holding JSON. Answers (fields, {name: kind}).
    """
    from qgis.core import QgsField, QgsFields
    from qgis.PyQt.QtCore import QVariant

    types = {"bool": QVariant.Bool, "int": QVariant.Int, "int64": QVariant.LongLong,
             "double": QVariant.Double, "string": QVariant.String, "json": QVariant.String}
    names: list[str] = []
    values: dict[str, list[Any]] = {}
    for feature in collection.get("features") or []:
        for name, value in (feature.get("properties") or {}).items():
            if name not in values:
                names.append(name)
                values[name] = []
            values[name].append(value)
    fields = QgsFields()
    kinds: dict[str, str] = {}
    for name in names:
        kind = _kind(values[name])
        kinds[name] = kind
        field = QgsField(name, types[kind])
        if kind == "json":
            field.setTypeName("JSON")
        fields.append(field)
    return fields, kinds


def geometry_type(collection: dict[str, Any]):
    """The QGIS WKB type of a FeatureCollection (multi types when mixed single/multi)."""
    from qgis.core import QgsWkbTypes

    kinds = {((f.get("geometry") or {}).get("type") or "") for f in collection.get("features")
             or []}
    kinds.discard("")
    if not kinds:
        return QgsWkbTypes.NoGeometry
    base = {k.replace("Multi", "") for k in kinds}
    if len(base) > 1:
        return QgsWkbTypes.Unknown
    name = base.pop()
    multi = any(k.startswith("Multi") for k in kinds)
    table = {"Point": (QgsWkbTypes.Point, QgsWkbTypes.MultiPoint),
             "LineString": (QgsWkbTypes.LineString, QgsWkbTypes.MultiLineString),
             "Polygon": (QgsWkbTypes.Polygon, QgsWkbTypes.MultiPolygon)}
    if name not in table:
        return QgsWkbTypes.Unknown
    return table[name][1 if multi else 0]


def collection_features(collection: dict[str, Any], fields, kinds: dict[str, str]) -> list[Any]:
    """``QgsFeature`` s of a FeatureCollection with attributes of the typed ``fields``."""
    from qgis.core import QgsFeature, QgsFields, QgsGeometry, QgsJsonUtils, QgsWkbTypes
    from qgis.PyQt.QtCore import QTextCodec

    items = collection.get("features") or []
    target = geometry_type(collection)
    geometry_only = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": f.get("geometry"), "properties": {}} for f in items]}
    codec = QTextCodec.codecForName(b"UTF-8")
    parsed = QgsJsonUtils.stringToFeatureList(json.dumps(geometry_only), QgsFields(), codec)
    features = []
    for i, item in enumerate(items):
        feature = QgsFeature(fields)
        geometry = parsed[i].geometry() if i < len(parsed) else QgsGeometry()
        if not geometry.isNull() and QgsWkbTypes.isMultiType(target) \
                and not geometry.isMultipart():
            geometry.convertToMultiType()
        feature.setGeometry(geometry)
        props = item.get("properties") or {}
        attributes = []
        for field in fields:
            value = props.get(field.name())
            if value is not None and kinds.get(field.name()) == "json":
                value = json.dumps(value, ensure_ascii=False)
            elif value is not None and kinds.get(field.name()) == "double":
                value = float(value)
            attributes.append(value)
        feature.setAttributes(attributes)
        features.append(feature)
    return features
