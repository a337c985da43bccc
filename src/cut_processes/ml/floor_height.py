"""The height model of ``floor-count``: storeys from height evidence, roof, footprint and use.

``cut-twin train floor-count-height`` rebuilds the shipped model from the generated demo
district (seed 42): it trains on the buildings whose storeys are published and evaluates on
the third whose storeys the demo hides (their truth is in the ``buildings_truth`` table).
``--data my_buildings.gpkg`` trains on a city's own buildings with known ``storeys`` instead
(evaluated by 5-fold cross-validation); an nDSM (``ndsm.tif``) or a DSM + DTM pair
(``dsm.tif``, ``dtm.tif``) next to that file adds raster evidence.

A random forest classifier over storey counts (scikit-learn, exported to ONNX) gives a
probability per count: the best count, its probability as confidence, a range covering 90 %.
"""

from __future__ import annotations

import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import fiona
import numpy as np
import shapely
from pyproj import CRS, Transformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.model_selection import KFold, cross_val_predict

from cut_processes.analysis.floors import (
    FEATURE_NAMES,
    FEATURE_TITLES,
    Buildings,
    evidence_variants,
    has_height_evidence,
    height_features,
)
from cut_processes.analysis.zonal import zonal_height_stats
from cut_processes.ml.export import check_agreement, to_onnx, write_model
from cut_processes.ml.training import register_evaluator, register_trainer

MODEL_ID = "floor-count-height"
SEED = 42
DEMO_SEED = 42
REVIEW_PRECISION = 0.95  # the review threshold keeps predictions at least this exact
METRIC_CRS = 25832


@dataclass
class TrainingSet:
    buildings: Buildings
    features: np.ndarray
    target: np.ndarray  # known storeys (NaN where unknown)
    evaluation: np.ndarray | None  # hidden truth of the demo (NaN where not hidden), or None
    groups: dict[str, np.ndarray]  # per building: district, function group
    description: dict


def _read_buildings(path: Path, layer: str | None = None) -> tuple[Buildings, dict]:
    """Buildings from a GeoPackage/GeoJSON file, reprojected to EPSG:25832 when needed."""
    with fiona.open(path, layer=layer) if layer else fiona.open(path) as src:
        crs = CRS.from_user_input(src.crs.to_wkt()) if src.crs else CRS.from_epsg(4326)
        features = list(src)
    geoms = np.array(
        [shapely.geometry.shape(f.geometry) if f.geometry else None for f in features], dtype=object
    )
    if crs.is_geographic:
        transformer = Transformer.from_crs(crs, METRIC_CRS, always_xy=True)
        geoms = shapely.transform(geoms, lambda xy: np.column_stack(transformer.transform(*xy.T)))
    records = [dict(f.properties) for f in features]
    ids = [r.get("id") or f.id for r, f in zip(records, features, strict=True)]
    extra = {"district": np.array([r.get("district") or "all" for r in records], dtype=object)}
    return Buildings.from_records(ids, geoms, records), extra


def _raster_stats(buildings: Buildings, folder: Path):
    if (folder / "ndsm.tif").exists():
        return zonal_height_stats(
            buildings.footprints, folder / "ndsm.tif", require_full_coverage=False
        )
    if (folder / "dsm.tif").exists() and (folder / "dtm.tif").exists():
        return zonal_height_stats(
            buildings.footprints,
            folder / "dsm.tif",
            folder / "dtm.tif",
            require_full_coverage=False,
        )
    return None


def load_training_set(data: Path | None, workdir: Path) -> TrainingSet:
    """The demo district (generated into ``workdir``) or a city's buildings file."""
    if data is None:
        from cut_processes.demo import generate_district

        folder = workdir / "demo"
        generate_district(folder, DEMO_SEED)
        buildings, extra = _read_buildings(folder / "district.gpkg", "buildings")
        with fiona.open(folder / "district.gpkg", layer="buildings_truth") as src:
            truth = {f.properties["id"]: f.properties["storeys"] for f in src}
        hidden = np.isnan(buildings.storeys)
        evaluation = np.array(
            [truth[i] if h else np.nan for i, h in zip(buildings.ids, hidden, strict=True)],
            dtype=float,
        )
        description = {
            "what": f"the generated demo district (cut-twin demo --seed {DEMO_SEED}): "
            "synthetic buildings, NOT real ones",
            "licence": "CC0-1.0 (generated)",
            "train": "buildings with published storeys",
            "test": "buildings whose storeys the demo hides (truth in buildings_truth)",
        }
    else:
        buildings, extra = _read_buildings(Path(data))
        folder = Path(data).parent
        evaluation = None
        description = {
            "what": f"{Path(data).name} (user data)",
            "licence": "see the data",
            "train": "buildings with known storeys",
            "test": "5-fold cross-validation",
        }
        if np.isnan(buildings.storeys).all():
            raise ValueError(f"{data}: no building has a 'storeys' value to learn from")
    stats = _raster_stats(buildings, folder)
    description["raster_evidence"] = stats is not None
    features = height_features(buildings, stats)
    groups = {
        "district": extra["district"],
        "function_group": np.array([_function_group(f) for f in buildings.function], dtype=object),
    }
    return TrainingSet(buildings, features, buildings.storeys, evaluation, groups, description)


def _function_group(code: str | None) -> str:
    if not code:
        return "unknown"
    digit = code.split("_")[-1][:1]
    return {"1": "residential", "2": "business and industry", "3": "public"}.get(digit, "other")


def _classifier() -> RandomForestClassifier:
    # Chosen on the training part: a forest handles the three evidence mixes better than
    # gradient boosting of similar size (which trades full-evidence accuracy for the others).
    return RandomForestClassifier(
        n_estimators=100, min_samples_leaf=2, max_features=0.5, random_state=SEED, n_jobs=1
    )


def _fit(features: np.ndarray, target: np.ndarray) -> RandomForestClassifier:
    rows = evidence_variants(features)
    y = np.tile(target.astype(int), 3)
    keep = has_height_evidence(rows)
    return _classifier().fit(rows[keep], y[keep])


def _accuracy(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    return {
        "exact": round(float(np.mean(pred == truth)), 4),
        "within_one": round(float(np.mean(np.abs(pred - truth) <= 1)), 4),
        "n": len(truth),
    }


def _rule_height(features: np.ndarray) -> np.ndarray:
    """The height the rule divides: eaves height, else the raster median."""
    eaves = features[:, FEATURE_NAMES.index("eaves_height")]
    return np.where(eaves > 0, eaves, features[:, FEATURE_NAMES.index("raster_p50")])


def _rule_baseline(features: np.ndarray, target: np.ndarray) -> float:
    """The 'height divided by a storey height' rule, with the storey height fitted on train."""
    height = _rule_height(features)
    candidates = np.arange(2.6, 4.01, 0.05)
    scores = [np.mean(np.maximum(1, np.round(height / h)) == target) for h in candidates]
    return float(candidates[int(np.argmax(scores))])


def _rule(features: np.ndarray, storey_height: float) -> np.ndarray:
    return np.maximum(1, np.round(_rule_height(features) / storey_height))


def _review_threshold(confidence: np.ndarray, correct: np.ndarray) -> float:
    """Lowest confidence above which out-of-fold predictions are at least 95 % exact."""
    order = np.argsort(-confidence)
    precision = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(precision >= REVIEW_PRECISION)
    if ok.size == 0:
        return 0.99
    return round(float(confidence[order][ok[-1]]), 3)


def _variant_rows(features: np.ndarray) -> dict[str, np.ndarray]:
    variants = evidence_variants(features)
    n = len(features)
    return {
        "attributes and raster": variants[:n],
        "attributes only": variants[n : 2 * n],
        "raster only": variants[2 * n :],
    }


@register_trainer(MODEL_ID)
def train_floor_height(data: Path | None, out_dir: Path):
    """Train, evaluate, export: writes ``floor-count-height.onnx`` and its card."""
    with tempfile.TemporaryDirectory(prefix="cut-train-") as tmp:
        ts = load_training_set(data, Path(tmp))
    known = ~np.isnan(ts.target)
    X, y = ts.features[known], ts.target[known].astype(int)

    metrics: dict = {}
    breakdown: dict = defaultdict(dict)
    if ts.evaluation is not None:
        model = _fit(X, y)
        hidden = ~np.isnan(ts.evaluation)
        truth = ts.evaluation[hidden].astype(int)
        for name, rows in _variant_rows(ts.features[hidden]).items():
            metrics[name] = _accuracy(model.predict(rows), truth)
        pred = model.predict(ts.features[hidden])
        for group, labels in ts.groups.items():
            for label in sorted(set(labels[hidden])):
                sel = labels[hidden] == label
                breakdown[group][label] = _accuracy(pred[sel], truth[sel])
        storey_height = _rule_baseline(X, y)
        rule = _rule(ts.features[hidden], storey_height)
        baseline = {
            "rule": f"max(1, round(eaves height / {storey_height:.2f} m))",
            **_accuracy(rule, truth),
        }
        evaluation_note = "trained on published storeys, tested on the hidden third"
    else:
        folds = KFold(5, shuffle=True, random_state=SEED)
        pred = np.zeros(len(y), dtype=int)
        for train_idx, test_idx in folds.split(X):
            pred[test_idx] = _fit(X[train_idx], y[train_idx]).predict(X[test_idx])
        metrics["attributes and raster"] = _accuracy(pred, y)
        for group, labels in ts.groups.items():
            for label in sorted(set(labels[known])):
                sel = labels[known] == label
                breakdown[group][label] = _accuracy(pred[sel], y[sel])
        storey_height = _rule_baseline(X, y)
        rule = _rule(X, storey_height)
        baseline = {
            "rule": f"max(1, round(eaves height / {storey_height:.2f} m))",
            **_accuracy(rule, y),
        }
        evaluation_note = "5-fold cross-validation on the buildings with known storeys"
        model = _fit(X, y)

    # Review threshold from out-of-fold predictions on the training part only.
    oof = cross_val_predict(
        _classifier(), X, y, cv=KFold(3, shuffle=True, random_state=SEED), method="predict_proba"
    )
    classes = np.unique(y)
    oof_conf = oof.max(axis=1)
    threshold = _review_threshold(oof_conf, classes[oof.argmax(axis=1)] == y)

    onnx_bytes = to_onnx(model, len(FEATURE_NAMES), classifier=True)
    agreement = check_agreement(model, onnx_bytes, evidence_variants(ts.features)[:3000])
    card = {
        "version": "1.0.0",
        "task": "classification: number of storeys above ground of a building",
        "description": "Storeys from height evidence (LoD2 attributes and/or an elevation "
        "model), roof type, footprint size and shape, building use and year built.",
        "features": [
            {"name": n, "meaning": FEATURE_TITLES[n], "missing": -1} for n in FEATURE_NAMES
        ],
        "labels": [int(c) for c in model.classes_],
        "algorithm": "scikit-learn RandomForestClassifier(n_estimators=100, min_samples_leaf=2, "
        "max_features=0.5); the confidence is the share of trees voting for the count; "
        "trained on each building three times (all evidence, attributes only, raster only)",
        "training_data": {**ts.description, "buildings_with_known_storeys": int(known.sum())},
        "evaluation": evaluation_note,
        "metrics": metrics,
        "metrics_by_group": dict(breakdown),
        "baseline": baseline,
        "onnx_agreement": agreement,
        "review_threshold": threshold,
        "review_threshold_rule": f"out-of-fold predictions on the training part with at least "
        f"this confidence are >= {REVIEW_PRECISION:.0%} exact",
        "intended_use": "Estimating storeys where LoD2 or cadastre data lack them, for floor "
        "area, dwelling and energy estimates at district scale; each estimate carries its "
        "confidence and range and is flagged for review under the threshold.",
        "limits": "The shipped model learned a generated district: its rules for storey "
        "heights, attics and halls are the generator's, not a real city's. Retrain on a "
        "city's own buildings with known storeys (cut-twin train floor-count-height --data "
        "...) before relying on it. Halls and buildings with attic storeys are the hardest "
        "cases; without raster evidence attic storeys are guessed.",
        "seed": SEED,
    }
    return write_model(out_dir, MODEL_ID, onnx_bytes, card)


HAMBURG_LOD2 = "buildings/hamburg_lod2_excerpt_*.gml"


def hamburg_lod2_report(shared_data: Path) -> list[dict]:
    """The shipped model on the real Hamburg LoD2 excerpts, building by building.

    A tiny real sample (LGV Hamburg, dl-de/by-2-0): reported, never tuned to.
    """
    from cut_processes.io.citygml import read_citygml
    from cut_processes.ml.registry import get_model

    files = sorted(shared_data.glob(HAMBURG_LOD2))
    if not files:
        raise FileNotFoundError(f"no {HAMBURG_LOD2} under {shared_data}")
    result = read_citygml(files)
    records = [f["properties"] for f in result.features]
    geoms = np.array([shapely.geometry.shape(f["geometry"]) for f in result.features])
    buildings = Buildings.from_records([r["id"] for r in records], geoms, records)
    features = height_features(buildings, None)
    model = get_model(MODEL_ID)
    out = model.run(features)
    labels = np.asarray(model.card.labels)
    probs = out["probabilities"]
    report = []
    for i, record in enumerate(records):
        report.append({
            "id": record["id"],
            "function": record.get("function"),
            "roof_type": record.get("roof_type"),
            "measured_height": record.get("measured_height"),
            "eaves_height": record.get("eaves_height"),
            "storeys_above_ground": record.get("storeys"),
            "predicted": int(labels[int(probs[i].argmax())]),
            "confidence": round(float(probs[i].max()), 3),
        })
    return report


@register_evaluator(MODEL_ID)
def evaluate_floor_height(data: Path | None) -> dict:
    """The card's metrics (demo district) and the real Hamburg LoD2 sample, reported."""
    from cut_processes.ml.registry import get_model

    card = get_model(MODEL_ID).card.raw
    shared = Path(data) if data is not None else _default_shared_data()
    hamburg = hamburg_lod2_report(shared)
    agree = sum(r["predicted"] == r["storeys_above_ground"] for r in hamburg)
    return {
        "model": f"{MODEL_ID}@{card['version']}",
        "demo_district": {"metrics": card["metrics"], "baseline": card["baseline"]},
        "hamburg_lod2": {"buildings": hamburg, "exact": f"{agree} of {len(hamburg)}"},
    }


def _default_shared_data() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "data"
        if candidate.is_dir():
            return candidate
    return Path("../shared/data")
