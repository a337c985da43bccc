"""Process ``floor-count`` (Stockwerkserkennung): storeys of every building.

Evidence per building: LoD2 attribute heights and/or height statistics of an elevation model
inside the footprint (height model), and a facade photo (facade model); fused where both
exist. The logic lives in ``analysis/floors.py``, ``analysis/zonal.py`` and the models in
``ml/``; this module checks inputs, calls them and shapes the output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import shapely

from cut_processes.analysis import floors
from cut_processes.analysis.zonal import RasterCoverageError, zonal_height_stats
from cut_processes.io.inputs import (
    InputProblem,
    check_href_allowed,
    local_path,
    require_polygons,
    resolve_features,
    to_crs84,
)
from cut_processes.processes.base import CutProcessor, InputError, utc_now
from cut_processes.processes.context import resolve_context

HEIGHT_MODEL = "floor-count-height"
FACADE_MODEL = "floor-count-facade"
DOCS = "https://github.com/connected-urban-twins/cut-processes/blob/main/docs"

_RASTER_REF = {
    "oneOf": [
        {"type": "string", "description": "id of a raster configured on the server"},
        {
            "type": "object",
            "properties": {"href": {"type": "string"}},
            "required": ["href"],
            "description": "allow-listed URL (or, under cut-twin run, a local path) of a GeoTIFF",
        },
    ]
}

PROCESS_METADATA: dict[str, Any] = {
    "version": "1.0.0",
    "id": "floor-count",
    "title": {"en": "Floor counting", "de": "Stockwerkserkennung"},
    "description": {
        "en": "Estimates the number of storeys of every building from LoD2 attribute heights, "
        "an elevation model (nDSM or DSM + DTM) and facade photos, with a confidence, a range, "
        "the factors that drove each estimate and a review flag. Buildings with known storeys "
        "keep them and get a check. Returns the buildings and a summary (counts per method, "
        "agreement with known storeys, gross floor area).",
        "de": "Schätzt die Geschosszahl jedes Gebäudes aus LoD2-Höhenattributen, einem "
        "Höhenmodell (nDOM oder DOM + DGM) und Fassadenfotos, mit Konfidenz, Spanne, den "
        "ausschlaggebenden Faktoren und einem Prüfhinweis. Bekannte Geschosszahlen bleiben "
        "erhalten und werden gegengeprüft. Liefert die Gebäude und eine Zusammenfassung.",
    },
    "jobControlOptions": ["sync-execute", "async-execute"],
    "outputTransmission": ["value"],
    "keywords": ["buildings", "storeys", "Stockwerke", "LoD2", "AI"],
    "links": [
        {
            "type": "text/html",
            "rel": "about",
            "title": "Documentation",
            "href": f"{DOCS}/processes/floor-count.md",
            "hreflang": "en-US",
        },
        {
            "type": "application/json",
            "rel": "describedby",
            "title": "Model card: floor-count-height",
            "href": "/models/floor-count-height",
        },
        {
            "type": "application/json",
            "rel": "describedby",
            "title": "Model card: floor-count-facade",
            "href": "/models/floor-count-facade",
        },
    ],
    "inputs": {
        "buildings": {
            "title": "Buildings",
            "description": "Building footprints (Polygon/MultiPolygon) with optional "
            "attributes measured_height, eaves_height (m), roof_type (ALKIS code), function "
            "(ALKIS code), year_built, storeys (known), facade_image (server image id, "
            "allow-listed URL or, under cut-twin run, a local path). An inline GeoJSON "
            'FeatureCollection (CRS84), {"href": ...}, or {"collection": "buildings", '
            '"bbox": [...], "filter": "CQL2"}.',
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
            "minOccurs": 1,
            "maxOccurs": 1,
        },
        "height_raster": {
            "title": "Height raster",
            "description": 'Optional elevation model: a server raster id (e.g. "demo"), '
            '{"ndsm": ref} heights above ground, or {"dsm": ref, "dtm": ref}; each ref a '
            'server raster id or {"href": ...} to a GeoTIFF/COG in the buildings\' metric CRS.',
            "schema": {
                "oneOf": [
                    {"type": "string"},
                    {
                        "type": "object",
                        "properties": {"ndsm": _RASTER_REF},
                        "required": ["ndsm"],
                        "additionalProperties": False,
                    },
                    {
                        "type": "object",
                        "properties": {"dsm": _RASTER_REF, "dtm": _RASTER_REF},
                        "required": ["dsm", "dtm"],
                        "additionalProperties": False,
                    },
                ]
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "method": {
            "title": "Method",
            "description": "auto: use whatever evidence each building has; height: height "
            "model only; facade: facade model only; fusion: only buildings with both.",
            "schema": {
                "type": "string",
                "enum": ["auto", "height", "facade", "fusion"],
                "default": "auto",
            },
            "minOccurs": 0,
            "maxOccurs": 1,
        },
        "publish": {
            "title": "Publish",
            "description": "Also write the result into the collection floor-count-results.",
            "schema": {"type": "boolean", "default": False},
            "minOccurs": 0,
            "maxOccurs": 1,
        },
    },
    "outputs": {
        "buildings": {
            "title": "Buildings with storeys",
            "description": "Input buildings (CRS84) plus storeys_estimated, storeys_range, "
            "confidence, method, model, explanation, needs_review and storeys_check.",
            "schema": {"type": "object", "contentMediaType": "application/geo+json"},
        },
        "summary": {
            "title": "Summary",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
        "provenance": {
            "title": "Provenance",
            "schema": {"type": "object", "contentMediaType": "application/json"},
        },
    },
    "example": {
        "inputs": {
            "buildings": {
                "collection": "buildings",
                "bbox": [9.925, 53.545, 9.93, 53.548],
            },
            "height_raster": "demo",
            "method": "auto",
        }
    },
}


class FloorCountProcessor(CutProcessor):
    """Storeys of buildings from height evidence and facade photos."""

    PROCESS_METADATA: ClassVar[dict[str, Any]] = PROCESS_METADATA

    def run(self, inputs: dict[str, Any]) -> dict[str, Any]:
        started = utc_now()
        context = resolve_context(self.processor_def, self.allow_local_paths)
        self.progress(2, "reading buildings")
        features = resolve_features("buildings", inputs["buildings"], context)
        require_polygons("buildings", features)
        buildings = floors.Buildings.from_records(
            features.ids, features.geometries, features.properties
        )
        _check_heights(buildings)
        method = inputs["method"]

        stats = None
        if "height_raster" in inputs and method != "facade":
            self.progress(10, f"height statistics of {len(buildings)} footprints")
            surface, ground = self._raster_paths(inputs["height_raster"])
            try:
                stats = zonal_height_stats(buildings.footprints, surface, ground)
            except RasterCoverageError as err:
                raise InputProblem("height_raster", str(err)) from err
        self.progress(35, "height model")
        from cut_processes.ml.registry import get_model  # loads onnxruntime only when needed

        height_model = get_model(HEIGHT_MODEL)
        matrix = floors.height_features(buildings, stats)
        has_height = floors.has_height_evidence(matrix)
        classes = np.asarray(height_model.card.raw["labels"], dtype=int)
        height_probs = np.full((len(buildings), len(classes)), np.nan, dtype=np.float64)
        explanations: list[list[tuple[str, float]]] = [[] for _ in range(len(buildings))]
        if method != "facade" and has_height.any():
            out = height_model.run(matrix[has_height])
            height_probs[has_height] = out["probabilities"]
            # Explain the count the model chose (its labels are at hand: no second run).
            factors = height_model.explain(matrix[has_height], top=3, classes=out["label"])
            for i, row_factors in zip(np.flatnonzero(has_height), factors, strict=True):
                explanations[i] = row_factors

        facade_probs = None
        facade_model = None
        if method != "height":
            self.progress(60, "facade photos")
            facade_probs, facade_model = self._facade_evidence(buildings, classes)

        self.progress(85, "combining evidence")
        probs, used = floors.combine_evidence(method, height_probs, facade_probs, has_height)
        storeys, confidence, low, high = floors.storeys_from_probabilities(
            np.nan_to_num(probs), classes
        )
        estimated = np.where(used == "none", np.nan, storeys.astype(float))
        # Each model's card sets the confidence under which its estimates need review.
        thresholds = {
            "height": height_model.card.review_threshold,
            "fusion": height_model.card.review_threshold,
            "none": np.inf,
        }
        if facade_model is not None:
            thresholds["facade"] = facade_model.card.review_threshold
        needs_review = confidence < np.array([thresholds[m] for m in used])
        needs_review |= used == "none"
        models = [height_model] + ([facade_model] if facade_model is not None else [])
        estimate = _Estimate(
            storeys,
            confidence,
            low,
            high,
            used,
            needs_review,
            explanations,
            {m.card.id: m.ref for m in models},
        )
        collection = _feature_collection(features, buildings, estimate)
        summary = floors.floor_summary(
            shapely.area(features.geometries), buildings.storeys, estimated, used, needs_review
        )
        summary["review_thresholds"] = {k: v for k, v in thresholds.items() if k != "none"}
        output: dict[str, Any] = {"buildings": collection, "summary": summary}
        output["provenance"] = self.provenance(inputs, started, [m.provenance for m in models])
        if inputs.get("publish"):
            self.progress(95, "publishing")
            output["summary"]["published"] = self._publish(collection)
        self.progress(100, "done")
        return output

    # -- evidence ---------------------------------------------------------------------------
    def _raster_paths(self, value: Any) -> tuple[Path, Path | None]:
        configured: dict[str, Any] = self.processor_def.get("rasters") or {}
        if isinstance(value, str):
            entry = configured.get(value)
            if entry is None:
                known = ", ".join(sorted(configured)) or "none"
                raise InputError("height_raster", f"unknown raster id {value!r}; known: {known}")
            value = entry
        if "ndsm" in value:
            return self._one_raster(value["ndsm"], configured), None
        dsm = self._one_raster(value["dsm"], configured)
        return dsm, self._one_raster(value["dtm"], configured)

    def _one_raster(self, ref: Any, configured: dict[str, Any]) -> Path:
        if isinstance(ref, str) and ref in configured and isinstance(configured[ref], str):
            path = Path(configured[ref])
        elif isinstance(ref, str) and not isinstance(configured.get(ref), dict):
            path = Path(ref)  # a path from the server's own configuration
            if ref not in _config_paths(configured):
                raise InputError("height_raster", f"unknown raster id {ref!r}")
        else:
            href = ref["href"] if isinstance(ref, dict) else str(ref)
            context = resolve_context(self.processor_def, self.allow_local_paths)
            local = local_path("height_raster", href, context)
            if local is None:
                check_href_allowed("height_raster", href, context)
                return Path(f"/vsicurl/{href}")
            path = local
        if not path.exists():
            raise InputError("height_raster", f"raster file not found: {path.name}")
        return path

    def _facade_evidence(self, buildings: floors.Buildings, classes: np.ndarray):
        """Per-class probabilities from facade photos (NaN rows where a building has none)."""
        from cut_processes.analysis.facades import facade_probabilities, load_facade_image

        refs = buildings.facade_image
        rows = [i for i, ref in enumerate(refs) if ref]
        if not rows:
            return None, None
        images = []
        for i in rows:
            path = self._image_path(str(refs[i]), buildings.ids[i])
            try:
                images.append(load_facade_image(path))
            except (OSError, ValueError) as err:
                raise InputProblem(
                    "buildings",
                    f"building {buildings.ids[i]!r}: unreadable facade image {path.name} ({err})",
                ) from err
        from cut_processes.ml.registry import get_model

        model = get_model(FACADE_MODEL)
        probs = np.full((len(buildings), len(classes)), np.nan)
        probs[rows] = facade_probabilities(model, images, classes)
        return probs, model

    def _image_path(self, ref: str, building_id: Any) -> Path:
        folder = self.processor_def.get("facade_images")
        if folder and "/" not in ref and "." not in ref:
            path = Path(folder) / f"{ref}.png"
            if not path.exists():
                raise InputProblem(
                    "buildings", f"building {building_id!r}: unknown facade image id {ref!r}"
                )
            return path
        context = resolve_context(self.processor_def, self.allow_local_paths)
        local = local_path("buildings", ref, context)
        if local is not None:
            return local
        check_href_allowed("buildings", ref, context)
        return _download(ref)

    def _publish(self, collection: dict) -> dict:
        from cut_processes.processes.publish import publish_feature_collection

        return publish_feature_collection("floor-count", self.job_id, collection)


def _config_paths(configured: dict[str, Any]) -> set[str]:
    paths: set[str] = set()
    for value in configured.values():
        if isinstance(value, str):
            paths.add(value)
        elif isinstance(value, dict):
            paths.update(v for v in value.values() if isinstance(v, str))
    return paths


def _download(href: str) -> Path:
    import tempfile

    import requests

    try:
        response = requests.get(href, timeout=30)
        response.raise_for_status()
    except requests.RequestException as err:
        raise InputProblem("buildings", f"cannot fetch facade image {href}: {err}") from err
    with tempfile.NamedTemporaryFile(suffix=Path(href).suffix or ".img", delete=False) as fh:
        fh.write(response.content)
    return Path(fh.name)


def _check_heights(buildings: floors.Buildings) -> None:
    for name in ("measured_height", "eaves_height"):
        values = getattr(buildings, name)
        bad = values < 0
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise InputProblem(
                "buildings", f"building {buildings.ids[i]!r}: negative {name} ({values[i]} m)"
            )
    bad = buildings.eaves_height > buildings.measured_height + 0.5
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InputProblem(
            "buildings",
            f"building {buildings.ids[i]!r}: eaves_height {buildings.eaves_height[i]} m is above "
            f"measured_height {buildings.measured_height[i]} m",
        )


@dataclass
class _Estimate:
    """The per-building results of the analysis, as arrays."""

    storeys: np.ndarray
    confidence: np.ndarray
    low: np.ndarray
    high: np.ndarray
    used: np.ndarray
    needs_review: np.ndarray
    explanations: list[list[tuple[str, float]]]
    model_refs: dict[str, str]


_NO_EVIDENCE = {
    "storeys_estimated": None,
    "storeys_range": None,
    "confidence": 0.0,
    "method": "none",
    "model": None,
    "explanation": [{"factor": "no height, raster or facade evidence", "weight": 1.0}],
    "needs_review": True,
}


def _feature_collection(features, buildings: floors.Buildings, est: _Estimate) -> dict:
    """The output buildings: input properties plus the estimate, geometry in CRS84."""
    geometries = _geojson_geometries(to_crs84(features.geometries, features.crs))
    refs = {
        "height": [est.model_refs.get(HEIGHT_MODEL)],
        "facade": [est.model_refs.get(FACADE_MODEL)],
        "fusion": [est.model_refs.get(HEIGHT_MODEL), est.model_refs.get(FACADE_MODEL)],
    }
    model_of = {method: ", ".join(r for r in names if r) for method, names in refs.items()}
    # Per building values as Python objects in one go (the same values int()/float() give).
    storeys, low, high = est.storeys.tolist(), est.low.tolist(), est.high.tolist()
    confidence, needs_review = est.confidence.tolist(), est.needs_review.tolist()
    known = buildings.storeys.tolist()
    out = []
    for i, fid in enumerate(features.ids):
        props = dict(features.properties[i])
        method = str(est.used[i])
        if method == "none":
            props.update(_NO_EVIDENCE)
        else:
            explanation = (
                [
                    {"factor": floors.FEATURE_TITLES.get(name, name), "weight": round(float(w), 3)}
                    for name, w in est.explanations[i]
                ]
                if method in ("height", "fusion")
                else []
            )
            if method in ("facade", "fusion"):
                explanation.append(
                    {"factor": "rows of windows on the facade photo", "weight": None}
                )
            props.update(
                {
                    "storeys_estimated": int(storeys[i]),
                    "storeys_range": [int(low[i]), int(high[i])],
                    "confidence": round(float(confidence[i]), 3),
                    "method": method,
                    "model": model_of[method],
                    "explanation": explanation,
                    "needs_review": bool(needs_review[i]),
                }
            )
        if not math.isnan(known[i]):
            props["storeys"] = int(known[i])
            if props["storeys_estimated"] is not None:
                agree = props["storeys_estimated"] == props["storeys"]
                props["storeys_check"] = "agree" if agree else "disagree"
        out.append({"type": "Feature", "id": fid, "geometry": geometries[i], "properties": props})
    return {"type": "FeatureCollection", "features": out}


def _geojson_geometries(geoms: np.ndarray) -> list[dict]:
    """``shapely.geometry.mapping`` of every geometry: the usual footprints (non-empty
    Polygons) from one read of all their coordinates, anything else one by one."""
    out: list = [None] * len(geoms)
    fast = (shapely.get_type_id(geoms) == 3) & ~shapely.is_empty(geoms)
    has_m = getattr(shapely, "has_m", None)  # shapely >= 2.1
    if has_m is not None:
        fast &= ~has_m(geoms)
    has_z = shapely.has_z(geoms)
    for with_z in (False, True):
        rows = np.flatnonzero(fast & (has_z == with_z))
        if rows.size == 0:
            continue
        _, coords, (ring_offsets, polygon_offsets) = shapely.to_ragged_array(
            geoms[rows], include_z=with_z
        )
        points = list(map(tuple, coords.tolist()))
        bounds = ring_offsets.tolist()
        rings = [tuple(points[a:b]) for a, b in pairwise(bounds)]
        firsts = polygon_offsets.tolist()
        for row, a, b in zip(rows.tolist(), firsts[:-1], firsts[1:], strict=True):
            out[row] = {"type": "Polygon", "coordinates": tuple(rings[a:b])}
    for row in np.flatnonzero(~fast).tolist():
        out[row] = shapely.geometry.mapping(geoms[row])
    return out
