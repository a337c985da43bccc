"""Floor counting (Stockwerkserkennung): height evidence, model features and fusion.

Pure domain logic on arrays: buildings come in as a :class:`Buildings` table in a metric CRS,
results go out as arrays. No pygeoapi, Flask or HTTP here.

The height model sees, per building, what evidence exists: attribute heights (LoD2
``measuredHeight`` and the eaves height), height statistics of an nDSM or DSM - DTM inside the
footprint, roof type, footprint size and shape, building function and year built. Missing values
are encoded as ``MISSING`` (-1); the model is trained with the same gaps (see
:func:`evidence_variants`), so one model serves every mix of evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import shapely

from cut_processes.analysis.zonal import ZonalStats

MISSING = -1.0

FEATURE_NAMES: tuple[str, ...] = (
    "measured_height",  # m, attribute (LoD2 measuredHeight)
    "eaves_height",  # m, attribute
    "roof_rise",  # m, measured - eaves height
    "raster_p50",  # m above ground, median of the nDSM inside the footprint
    "raster_p90",  # m above ground
    "raster_max",  # m above ground
    "roof_fill_p50",  # (raster p50 - eaves) / roof rise: dormers and attic volume raise it
    "roof_fill_p90",
    "roof_code",  # ALKIS Dachform code (1000 flat, 3100 gabled, ...)
    "roof_flat",  # 1 flat, 0 pitched
    "footprint_area",  # m²
    "compactness",  # 4 pi A / P², 1 for a circle
    "width",  # m, short side of the minimum rotated rectangle
    "length",  # m, long side
    "function_group",  # first digit of the ALKIS function: 1 living, 2 business, 3 public
    "function_code",  # ALKIS Gebäudefunktion (4 digits after 31001_)
    "year_built",
)

#: Human-readable names for explanations.
FEATURE_TITLES: dict[str, str] = {
    "measured_height": "building height",
    "eaves_height": "eaves height",
    "roof_rise": "roof height above the eaves",
    "raster_p50": "median height in the elevation model",
    "raster_p90": "90th percentile height in the elevation model",
    "raster_max": "maximum height in the elevation model",
    "roof_fill_p50": "roof volume (dormers, attic)",
    "roof_fill_p90": "upper roof volume",
    "roof_code": "roof type",
    "roof_flat": "flat roof",
    "footprint_area": "footprint area",
    "compactness": "footprint compactness",
    "width": "building depth",
    "length": "building length",
    "function_group": "building use (group)",
    "function_code": "building use",
    "year_built": "year built",
}

_ATTRIBUTE_HEIGHTS = (
    "measured_height",
    "eaves_height",
    "roof_rise",
    "roof_fill_p50",
    "roof_fill_p90",
)
_RASTER_HEIGHTS = ("raster_p50", "raster_p90", "raster_max", "roof_fill_p50", "roof_fill_p90")


@dataclass
class Buildings:
    """Buildings as columns; footprints in a metric CRS (metres). NaN/None where unknown."""

    ids: np.ndarray
    footprints: np.ndarray
    measured_height: np.ndarray
    eaves_height: np.ndarray
    roof_type: np.ndarray
    function: np.ndarray
    year_built: np.ndarray
    storeys: np.ndarray
    facade_image: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=object))

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def from_records(cls, ids, footprints, records: list[dict]) -> Buildings:
        """From feature properties named as in the demo district / LoD2 import."""

        def column(key: str) -> list:
            return [r.get(key) for r in records]

        return cls(
            ids=np.asarray(ids, dtype=object),
            footprints=np.asarray(footprints, dtype=object),
            measured_height=_numbers(column("measured_height")),
            eaves_height=_numbers(column("eaves_height")),
            roof_type=_texts(column("roof_type")),
            function=_texts(column("function")),
            year_built=_numbers(column("year_built")),
            storeys=_numbers(column("storeys")),
            facade_image=_texts(column("facade_image")),
        )


#: Value types numpy turns into float64 exactly as ``float()`` does (None into NaN).
_NUMBER_TYPES = frozenset({float, int, bool, type(None), np.float64, np.float32, np.int64,
                           np.int32})  # fmt: skip
_TEXT_TYPES = frozenset({str, type(None)})


def _numbers(values: list) -> np.ndarray:
    """``float(value)`` per value, NaN for None and ''."""
    if _NUMBER_TYPES.issuperset(map(type, values)):  # the usual case: one conversion in C
        return np.array(values, dtype=np.float64)
    out = np.full(len(values), np.nan)
    for i, v in enumerate(values):
        if v is not None and v != "":
            out[i] = float(v)  # strings as numbers; anything else raises as float() does
    return out


def _texts(values: list) -> np.ndarray:
    """``str(value)`` per value, None for None and ''."""
    if _TEXT_TYPES.issuperset(map(type, values)):
        return np.array([v or None for v in values], dtype=object)
    return np.array([_text_or_none(v) for v in values], dtype=object)


def _text_or_none(value) -> str | None:
    return None if value is None or value == "" else str(value)


def _code(values: np.ndarray, part: int = 0, digits: int | None = None) -> np.ndarray:
    """Numeric ALKIS codes: '31001_1010' -> 1010 (part after the underscore), '3100' -> 3100."""
    if _TEXT_TYPES.issuperset(map(type, values)):  # few distinct codes: each parsed once
        codes = {value: _one_code(value, digits) for value in dict.fromkeys(values)}
        return np.fromiter(map(codes.__getitem__, values), dtype=np.float64, count=len(values))
    return np.array([_one_code(value, digits) for value in values], dtype=np.float64)


def _one_code(value, digits: int | None) -> float:
    if value is None:
        return MISSING
    token = str(value).split("_")[-1]
    if digits is not None:
        token = token[:digits]
    return float(token) if token.isdigit() else MISSING


def footprint_shape(footprints: np.ndarray) -> dict[str, np.ndarray]:
    """Area (m²), compactness, width and length (m) of the minimum rotated rectangle."""
    area = shapely.area(footprints)
    perimeter = shapely.length(footprints)
    compactness = np.where(perimeter > 0, 4 * np.pi * area / np.maximum(perimeter, 1e-9) ** 2, 0)
    env = shapely.oriented_envelope(footprints)
    # The rectangle's first three corners give its two side lengths (a rectangle is a
    # Polygon without holes; degenerate footprints give a LineString or Point: 0, 0).
    coords = shapely.get_coordinates(env)
    counts = shapely.get_num_coordinates(env)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ok = (shapely.get_type_id(env) == 3) & (counts >= 4)
    width = np.zeros(len(footprints))
    length = np.zeros(len(footprints))
    s = starts[ok]
    side1 = np.hypot(*(coords[s + 1] - coords[s]).T)
    side2 = np.hypot(*(coords[s + 2] - coords[s + 1]).T)
    width[ok] = np.minimum(side1, side2)
    length[ok] = np.maximum(side1, side2)
    return {"footprint_area": area, "compactness": compactness, "width": width, "length": length}


def height_features(buildings: Buildings, stats: ZonalStats | None) -> np.ndarray:
    """The height model's input matrix (float32, one row per building, :data:`FEATURE_NAMES`)."""
    n = len(buildings)
    mh = buildings.measured_height
    eh = buildings.eaves_height
    rise = mh - eh
    columns: dict[str, np.ndarray] = {
        "measured_height": mh,
        "eaves_height": eh,
        "roof_rise": rise,
    }
    if stats is not None:
        columns.update(raster_p50=stats.p50, raster_p90=stats.p90, raster_max=stats.max)
        with np.errstate(invalid="ignore", divide="ignore"):
            pitched = rise > 0.5
            columns["roof_fill_p50"] = np.where(pitched, (stats.p50 - eh) / rise, 0.0)
            columns["roof_fill_p90"] = np.where(pitched, (stats.p90 - eh) / rise, 0.0)
            unknown = np.isnan(rise) | np.isnan(stats.p50)
            columns["roof_fill_p50"][unknown] = np.nan
            columns["roof_fill_p90"][unknown] = np.nan
    roof = _code(buildings.roof_type)
    columns["roof_code"] = roof
    columns["roof_flat"] = np.where(roof < 0, MISSING, (roof == 1000).astype(float))
    columns.update(footprint_shape(buildings.footprints))
    columns["function_group"] = _code(buildings.function, digits=1)
    columns["function_code"] = _code(buildings.function)
    columns["year_built"] = buildings.year_built
    # Column by column into a features x buildings array, NaN -> MISSING once, then turned
    # into rows of float32.
    matrix = np.full((len(FEATURE_NAMES), n), MISSING, dtype=np.float64)
    for j, name in enumerate(FEATURE_NAMES):
        if name in columns:
            matrix[j] = columns[name]
    matrix[np.isnan(matrix)] = MISSING
    return np.ascontiguousarray(matrix.T, dtype=np.float32)


def evidence_variants(features: np.ndarray) -> np.ndarray:
    """Training rows for each mix of evidence: all, attributes only, raster only.

    The same building appears three times with the other evidence blanked, so the model
    learns to count storeys from whatever a building has.
    """
    attr_only = features.copy()
    raster_only = features.copy()
    for name in _RASTER_HEIGHTS:
        attr_only[:, FEATURE_NAMES.index(name)] = MISSING
    for name in _ATTRIBUTE_HEIGHTS:
        raster_only[:, FEATURE_NAMES.index(name)] = MISSING
    return np.concatenate([features, attr_only, raster_only])


def has_height_evidence(features: np.ndarray) -> np.ndarray:
    """True where a building has a height attribute or raster statistics."""
    cols = [FEATURE_NAMES.index(n) for n in ("measured_height", "eaves_height", "raster_p90")]
    return (features[:, cols] > 0).any(axis=1)


def storeys_from_probabilities(
    probabilities: np.ndarray, classes: np.ndarray, coverage: float = 0.9
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best storey count, its probability, and the smallest contiguous range holding ``coverage``.

    :returns: (storeys, confidence, low, high), integer arrays except confidence in 0..1.
    """
    best = probabilities.argmax(axis=1)
    storeys = classes[best].astype(int)
    confidence = probabilities[np.arange(len(best)), best]
    low = storeys.copy()
    high = storeys.copy()
    lo_idx = best.copy()
    hi_idx = best.copy()
    mass = confidence.copy()
    k = len(classes)
    for _ in range(k):
        need = mass < coverage
        if not need.any():
            break
        rows = np.arange(len(best))
        left = np.where(lo_idx > 0, probabilities[rows, np.maximum(lo_idx - 1, 0)], -1)
        right = np.where(hi_idx < k - 1, probabilities[rows, np.minimum(hi_idx + 1, k - 1)], -1)
        go_left = need & (left >= right) & (left >= 0)
        go_right = need & ~go_left & (right >= 0)
        lo_idx = np.where(go_left, lo_idx - 1, lo_idx)
        hi_idx = np.where(go_right, hi_idx + 1, hi_idx)
        mass = mass + np.where(go_left, left, 0) + np.where(go_right, right, 0)
    low = classes[lo_idx].astype(int)
    high = classes[hi_idx].astype(int)
    return storeys, confidence, low, high


def fuse(
    height_probs: np.ndarray | None,
    facade_probs: np.ndarray | None,
) -> np.ndarray:
    """Combine per-class probabilities of both models (same class order) where both exist.

    Independent evidence multiplies (a product of experts), renormalised; rows where one side
    is missing (NaN) take the other side as it is.
    """
    if height_probs is None:
        return facade_probs
    if facade_probs is None:
        return height_probs
    h_ok = ~np.isnan(height_probs).any(axis=1)
    f_ok = ~np.isnan(facade_probs).any(axis=1)
    eps = 1e-6
    product = (np.nan_to_num(height_probs) + eps) * (np.nan_to_num(facade_probs) + eps)
    product /= product.sum(axis=1, keepdims=True)
    out = np.where(h_ok[:, None], height_probs, facade_probs)
    both = h_ok & f_ok
    out[both] = product[both]
    return out


def combine_evidence(
    method: str,
    height: np.ndarray,
    facade: np.ndarray | None,
    has_height: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per building, which evidence counts and its storey probabilities.

    :param method: ``auto`` (whatever each building has), ``height``, ``facade``, or
        ``fusion`` (only buildings with both).
    :param height: height model probabilities (NaN rows: no height evidence).
    :param facade: facade model probabilities on the same classes, or None.
    :returns: (probabilities, method used per building: height, facade, fusion or none).
    """
    n = len(height)
    h_ok = has_height & ~np.isnan(height).any(axis=1)
    f_ok = (~np.isnan(facade).any(axis=1)) if facade is not None else np.zeros(n, dtype=bool)
    used = np.full(n, "none", dtype=object)
    probs = np.full_like(height, np.nan)
    if method in ("auto", "height"):
        probs[h_ok] = height[h_ok]
        used[h_ok] = "height"
    if method in ("auto", "facade") and facade is not None:
        only_facade = f_ok & (~h_ok if method == "auto" else np.ones(n, dtype=bool))
        probs[only_facade] = facade[only_facade]
        used[only_facade] = "facade"
    if method in ("auto", "fusion") and facade is not None:
        both = h_ok & f_ok
        probs[both] = fuse(height[both], facade[both])
        used[both] = "fusion"
    return probs, used


def floor_summary(
    footprint_area: np.ndarray,
    known_storeys: np.ndarray,
    estimated: np.ndarray,
    used: np.ndarray,
    needs_review: np.ndarray,
) -> dict:
    """Counts per method, agreement with known storeys, review count, gross floor area.

    :param footprint_area: m² per building.
    :param known_storeys: known storeys (NaN where unknown).
    :param estimated: estimated storeys (NaN where not estimated).
    :returns: the ``summary`` output of floor-count; gross floor area (m²) uses the known
        storeys where there are some, else the estimate.
    """
    known = ~np.isnan(known_storeys)
    checked = known & ~np.isnan(estimated)
    agreement = (estimated[checked] == known_storeys[checked]).mean() if checked.any() else None
    storeys = np.where(known, known_storeys, estimated)
    gross = float(np.nansum(footprint_area * storeys))
    methods, counts = np.unique(used.astype(str), return_counts=True)
    return {
        "buildings": len(used),
        "per_method": {str(m): int(c) for m, c in zip(methods, counts, strict=True)},
        "known_storeys": int(known.sum()),
        "agreement_rate": round(float(agreement), 4) if agreement is not None else None,
        "needs_review": int(needs_review.sum()),
        "gross_floor_area_m2": round(gross, 1),
    }
