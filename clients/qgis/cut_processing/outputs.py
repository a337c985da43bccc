"""Results of a job into QGIS: GeoJSON to feature sinks, GeoTIFFs to raster files, published
results collections to OGC API - Features layers, everything else to the log or a file.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from typing import Any

from .schema_mapping import OutputSpec

#: Characters of a JSON or text output written to the log (the file gets everything).
LOG_LIMIT = 4000


def split_results(media_type: str, raw: bytes, outputs: list[OutputSpec]) -> dict[str, Any]:
    """The value of each declared output from a results response.

    Our server (and pygeoapi) answers a JSON object keyed by output id; a raw single output
    (one declared output, or a non-JSON body) is assigned to the first output.
    """
    ids = [o.output_id for o in outputs]
    if media_type in ("image/tiff", "application/x-geotiff") or (
            raw[:4] in (b"II*\x00", b"MM\x00*")):
        target = next((o.output_id for o in outputs if o.kind == "raster"), ids[0] if ids else
                      "result")
        return {target: raw}
    try:
        data = json.loads(raw.decode("utf-8"))
    except ValueError:
        return {ids[0] if ids else "result": raw.decode("utf-8", "replace")}
    if isinstance(data, dict) and isinstance(data.get("outputs"), list):  # document response
        return {o.get("id"): o.get("value", o) for o in data["outputs"] if isinstance(o, dict)}
    if isinstance(data, dict) and ids and set(data) & set(ids):
        return data
    return {ids[0] if ids else "result": data}


def unwrap(value: Any) -> Any:
    """OGC qualified values ``{"value": ..., "mediaType": ...}`` -> the value."""
    if isinstance(value, dict) and "value" in value and \
            set(value) <= {"value", "mediaType", "encoding", "schema"}:
        return value["value"]
    return value


def find_published(value: Any, depth: int = 0) -> list[dict[str, Any]]:
    """``{"collection": ..., "href": .../collections/<c>/items...}`` entries in a JSON output."""
    found: list[dict[str, Any]] = []
    if depth > 4:
        return found
    if isinstance(value, dict):
        href = value.get("href")
        if isinstance(value.get("collection"), str) and isinstance(href, str) \
                and "/collections/" in href:
            found.append(value)
        for item in value.values():
            if isinstance(item, (dict, list)):
                found.extend(find_published(item, depth + 1))
    elif isinstance(value, list):
        for item in value[:100]:
            found.extend(find_published(item, depth + 1))
    return found


def oapif_layer(published: dict[str, Any], authcfg: str = ""):
    """An OGC API - Features layer of a published results collection (one job's features)."""
    from qgis.core import QgsVectorLayer

    href = published["href"]
    parts = urllib.parse.urlsplit(href)
    base = href.split("/collections/")[0]
    collection = published["collection"]
    query = dict(urllib.parse.parse_qsl(parts.query))
    uri = f"url='{base}' typename='{collection}' restrictToRequestBBOX='0'"
    if authcfg:
        uri += f" authcfg='{authcfg}'"
    name = collection
    layer = QgsVectorLayer(uri, name, "OAPIF")
    job_id = query.get("job_id")
    if job_id and layer.isValid():
        layer.setSubsetString(f"\"job_id\" = '{job_id}'")
        layer.setName(f"{collection} (job {job_id[:8]})")
    return layer


def write_vector(algorithm, parameters, context, spec: OutputSpec, value: Any) -> str | None:
    """A GeoJSON FeatureCollection into the output's feature sink; answers the sink id."""
    from qgis.core import QgsCoordinateReferenceSystem, QgsFeatureSink, QgsProcessingException

    from .geojson import collection_features, collection_fields, geometry_type

    if isinstance(value, dict) and value.get("type") == "Feature":
        value = {"type": "FeatureCollection", "features": [value]}
    if not isinstance(value, dict) or value.get("type") != "FeatureCollection":
        raise QgsProcessingException(
            f"output {spec.output_id!r} is not a GeoJSON FeatureCollection")
    if parameters.get(spec.name) is None:
        return None
    fields, kinds = collection_fields(value)
    sink, dest_id = algorithm.parameterAsSink(
        parameters, spec.name, context, fields, geometry_type(value),
        QgsCoordinateReferenceSystem("EPSG:4326"))
    if sink is None:
        return None
    for feature in collection_features(value, fields, kinds):
        sink.addFeature(feature, QgsFeatureSink.FastInsert)
    del sink
    return dest_id


def write_raster(algorithm, parameters, context, spec: OutputSpec, value: Any,
                 client) -> str | None:
    """A GeoTIFF output (bytes, base64 text or ``{"href": ...}``) into the destination file."""
    path = algorithm.parameterAsOutputLayer(parameters, spec.name, context)
    if not path:
        return None
    value = unwrap(value)
    if isinstance(value, dict) and value.get("href"):
        _, _, data = client.request("GET", value["href"], headers={"Accept": "image/tiff"})
    elif isinstance(value, str):
        data = base64.b64decode(value)
    else:
        data = bytes(value)
    with open(path, "wb") as fh:
        fh.write(data)
    return path


def write_text(path: str, value: Any) -> str:
    with open(path, "w", encoding="utf-8") as fh:
        if isinstance(value, str):
            fh.write(value)
        else:
            json.dump(value, fh, ensure_ascii=False, indent=2)
    return path


def log_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1)
    return text if len(text) <= LOG_LIMIT else text[:LOG_LIMIT] + f"... ({len(text)} characters)"
