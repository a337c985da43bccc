"""The facade model ``floor-count-facade``: storeys from a rectified facade photo.

Image features (:func:`cut_processes.analysis.facades.facade_features`) feed an extra-trees
classifier over storey counts, exported to ONNX. :func:`predict_storeys` (this module) is the
door for processes: pictures in, storeys with confidence, a plausible range and the factors
that drove each answer out.

Training (``cut-twin train floor-count-facade``) reads the CMP facade base set (fixed split,
``cut_processes.ml.cmp_facades``): its training part, plus crops of it whose storey truth is
re-derived from the boxes, plus the generated facades of demo districts; the test part and a
district of an unseen seed are only measured. See ``docs/models/floor-count-facade.md``.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from cut_processes.analysis.facades import (
    FEATURE_NAMES,
    facade_feature_matrix,
    facade_features,
    feature_descriptions,
    load_facade_image,
)
from cut_processes.ml import cmp_facades as cmp
from cut_processes.ml.registry import ModelCard, get_model
from cut_processes.ml.training import register_evaluator, register_trainer

LOGGER = logging.getLogger(__name__)

MODEL_ID = "floor-count-facade"
MODEL_VERSION = "1.0.0"
#: Seed of everything random in training (crops, the forest).
SEED = 42
#: Demo districts whose generated facades join the training data.
GENERATED_TRAIN_SEEDS = (42,)
#: Demo district measured as unseen generated data (never trained on).
GENERATED_EVAL_SEED = 7
#: Sample weights: CMP training pictures and their crops 1, the generated facades less
#: (chosen by 5-fold cross-validation on the CMP training part).
CROP_WEIGHT = 1.0
GENERATED_WEIGHT = 0.3
#: Crops per CMP training picture with one annotated building: sideways crops, and top
#: crops removing 1 .. MAX_TOP_CROP upper storeys (all depths: cross-validation preferred it
#: to one random depth).
SIDE_CROPS = 2
MAX_TOP_CROP = 3
#: Probability mass the reported storey range holds (at least).
RANGE_MASS = 0.8
#: Review rule: an answer needs review when its confidence is below the largest threshold at
#: which the cross-validated answers below it are within one storey at most this often.
REVIEW_MAX_WITHIN_ONE = 0.75
#: Forest settings (chosen by 5-fold cross-validation on the CMP training part).
#: 150 trees with leaves of >= 3 samples keep the ONNX file near 4 MB.
FOREST = {"n_estimators": 150, "min_samples_leaf": 3, "max_features": 0.3}
#: Share of rows on which onnxruntime must give scikit-learn's label (ties of two counts'
#: probabilities may break differently in float32).
MIN_AGREEMENT = 0.99


# -- prediction ---------------------------------------------------------------------------


class StoreyPrediction(NamedTuple):
    """Per picture:

    * ``storeys``: the count with the most probability within one storey of it;
    * ``confidence`` (0..1): the model's probability that the true count is within one
      storey of ``storeys`` (the quality the answer is chosen for);
    * ``low``/``high``: the narrowest run of counts around it holding at least
      :data:`RANGE_MASS` of the probability;
    * ``probability``: the model's probability of exactly ``storeys``;
    * ``explanation`` (if asked for): per picture the factors (feature name, signed share of
      the confidence) that moved the confidence most; with the bias they add up to it.
    """

    storeys: np.ndarray
    confidence: np.ndarray
    low: np.ndarray
    high: np.ndarray
    probability: np.ndarray
    explanation: list[list[tuple[str, float]]] | None = None


def decide(probabilities: np.ndarray, labels: Sequence[int]) -> tuple[np.ndarray, ...]:
    """(storeys, confidence, low, high, probability) from class probabilities.

    :param probabilities: rows x labels.
    :param labels: the storey count of each column.

    The answer is the count with the most probability within one storey of it (the best
    choice for the within-one-storey target; ties go to the more probable count);
    cross-validation on the CMP training part confirmed it against the most probable count.
    See :class:`StoreyPrediction` for the other values.
    """
    probs = np.asarray(probabilities, dtype=np.float64)
    values = np.asarray(labels, dtype=np.int64)
    order = np.argsort(values)
    probs, values = probs[:, order], values[order]
    near = (np.abs(values[:, None] - values[None, :]) <= 1).astype(np.float64)
    within = probs @ near
    best = np.argmax(within + 1e-9 * probs, axis=1)
    rows = np.arange(len(probs))
    low_i, high_i = best.copy(), best.copy()
    for row in rows:
        lo = hi = best[row]
        total = probs[row, lo]
        while total < RANGE_MASS - 1e-9 and (lo > 0 or hi < len(values) - 1):
            below = probs[row, lo - 1] if lo > 0 else -1.0
            above = probs[row, hi + 1] if hi < len(values) - 1 else -1.0
            if above > below:
                hi += 1
                total += above
            else:
                lo -= 1
                total += below
        low_i[row], high_i[row] = lo, hi
    return values[best], within[rows, best], values[low_i], values[high_i], probs[rows, best]


def explain_confidence(
    model: Any, features: np.ndarray, storeys: np.ndarray, top: int = 3
) -> list[list[tuple[str, float]]]:
    """Per row the ``top`` features that moved the confidence (probability of the counts
    within one storey of ``storeys``) most: Saabas contributions of the classes
    ``storeys - 1 .. storeys + 1`` summed. Sorted by absolute weight."""
    contributions = model.contributions(features)
    labels = np.asarray(model.card.labels, dtype=np.int64)
    near = np.abs(labels[None, :] - np.asarray(storeys)[:, None]) <= 1  # rows x labels
    weights = np.einsum("rfl,rl->rf", contributions.values, near.astype(np.float64))
    names = model.card.features
    result = []
    for row in weights:
        order = np.argsort(-np.abs(row), kind="stable")[: max(0, top)]
        result.append([(names[i], float(row[i])) for i in order])
    return result


def predict_storeys_from_features(
    features: np.ndarray, *, explain: int = 0, model_id: str = MODEL_ID
) -> StoreyPrediction:
    """:func:`predict_storeys` on precomputed :func:`facade_features` rows."""
    model = get_model(model_id)
    outputs = model.run(features)
    storeys, confidence, low, high, probability = decide(
        outputs["probabilities"], model.card.labels
    )
    explanation = explain_confidence(model, features, storeys, explain) if explain > 0 else None
    return StoreyPrediction(storeys, confidence, low, high, probability, explanation)


def predict_storeys(
    images: Iterable[np.ndarray | str | Path], *, explain: int = 0
) -> StoreyPrediction:
    """Storeys of rectified facade pictures, with the model ``floor-count-facade``.

    :param images: pictures as arrays (grey or RGB, see :func:`facade_features`) or files.
    :param explain: how many top factors to return per picture (0: none).
    """
    arrays = [load_facade_image(i) if isinstance(i, str | Path) else i for i in images]
    if not arrays:
        raise ValueError("images: no pictures given")
    return predict_storeys_from_features(facade_feature_matrix(arrays), explain=explain)


# -- data -----------------------------------------------------------------------------------


@dataclass
class Samples:
    """Feature rows with their storey truth, sample weight and provenance."""

    X: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    source: list[str]  # cmp | cmp-crop | generated
    name: list[str]  # picture name (crops: name of the source picture)
    group: list[str]  # for metrics broken down

    @classmethod
    def empty(cls) -> Samples:
        return cls(np.zeros((0, len(FEATURE_NAMES)), np.float32), np.zeros(0, np.int64),
                   np.zeros(0), [], [], [])  # fmt: skip

    def __add__(self, other: Samples) -> Samples:
        return Samples(
            np.vstack([self.X, other.X]),
            np.concatenate([self.y, other.y]),
            np.concatenate([self.weight, other.weight]),
            self.source + other.source,
            self.name + other.name,
            self.group + other.group,
        )

    def take(self, mask: np.ndarray) -> Samples:
        idx = np.flatnonzero(mask)
        return Samples(self.X[idx], self.y[idx], self.weight[idx],
                       [self.source[i] for i in idx], [self.name[i] for i in idx],
                       [self.group[i] for i in idx])  # fmt: skip


def storey_band(storeys: int) -> str:
    """Coarse storey class for metrics broken down: 1-3, 4-6, 7-9, 10+."""
    return "1-3" if storeys <= 3 else "4-6" if storeys <= 6 else "7-9" if storeys <= 9 else "10+"


def _crops(
    image: np.ndarray, boxes: list[cmp.Box], rng: np.random.Generator
) -> list[tuple[np.ndarray, int]]:
    """Crops of a CMP picture with their storey truth re-derived from the boxes inside.

    One building: :data:`SIDE_CROPS` sideways crops (50-80 % of the width, every storey
    kept) and top crops cut half-way between two window rows, removing 1, 2 and 3 upper
    storeys (at least two rows stay). Several buildings: each annotated facade's columns.
    """
    height, width = image.shape[:2]
    facades = cmp.assign_to_facades(boxes)
    crops: list[tuple[np.ndarray, int]] = []
    if len(facades) > 1:
        for facade, members in facades:
            crop = image[:, int(facade.left * width) : int(facade.right * width)]
            if members and crop.shape[1] >= 32:
                crops.append((crop, cmp.storeys_of_facade(members)))
        return crops
    members = facades[0][1]
    storeys = cmp.storeys_of_facade(members)
    for _ in range(SIDE_CROPS):
        share = rng.uniform(0.5, 0.8)
        left = rng.uniform(0.0, 1.0 - share)
        crop = image[:, int(left * width) : int((left + share) * width)]
        if crop.shape[1] >= 32:
            crops.append((crop, storeys))
    rows = cmp.window_rows(members)
    for removed in range(1, min(MAX_TOP_CROP, len(rows) - 2) + 1):
        above, below = rows[removed - 1], rows[removed]
        gap_top = max(b.bottom for b in above)
        gap_bottom = min(b.top for b in below)
        if gap_bottom <= gap_top:  # overlapping boxes: cut between the row centres
            gap_top = float(np.mean([b.row_centre for b in above]))
            gap_bottom = float(np.mean([b.row_centre for b in below]))
        cut = (gap_top + gap_bottom) / 2
        kept = [b for b in members if b.row_centre > cut]
        crop = image[int(cut * height) :]
        if crop.shape[0] >= 32:
            crops.append((crop, cmp.storeys_of_facade(kept)))
    return crops


def cmp_samples(pictures: list[cmp.CmpImage], *, crops: bool = False, seed: int = SEED) -> Samples:
    """Feature rows of CMP pictures (and, with ``crops``, of their crops, see :func:`_crops`)."""
    rng = np.random.default_rng(seed)
    rows, ys, weights, sources, names, groups = [], [], [], [], [], []
    for picture in pictures:
        image = load_facade_image(picture.image_path)
        group = "one building" if picture.facades <= 1 else "several buildings"
        rows.append(facade_features(image))
        ys.append(picture.storeys)
        weights.append(1.0)
        sources.append("cmp")
        names.append(picture.name)
        groups.append(group)
        if crops:
            boxes = cmp.read_boxes(picture.image_path.with_suffix(".xml"))
            for crop, storeys in _crops(image, boxes, rng):
                rows.append(facade_features(crop))
                ys.append(storeys)
                weights.append(CROP_WEIGHT)
                sources.append("cmp-crop")
                names.append(picture.name)
                groups.append(group)
    if not rows:
        return Samples.empty()
    return Samples(np.vstack(rows), np.asarray(ys, np.int64), np.asarray(weights),
                   sources, names, groups)  # fmt: skip


def generated_samples(seed: int, workdir: Path) -> tuple[Samples, dict[str, Any]]:
    """Feature rows of the facade pictures of a freshly generated demo district.

    Returns the samples (group: shop front / attic storey flags) and the district manifest.
    """
    import json

    from cut_processes.demo import generate_district

    folder = workdir / f"district-{seed}"
    manifest = generate_district(folder, seed)
    labels = json.loads((folder / "facades" / "labels.json").read_text(encoding="utf-8"))
    ids = sorted(labels)
    X = facade_feature_matrix([load_facade_image(folder / "facades" / f"{i}.png") for i in ids])
    groups = [
        ("shop front" if labels[i]["has_shop_front"] else "no shop front")
        + (", attic storey" if labels[i]["has_attic_storey"] else "")
        for i in ids
    ]
    samples = Samples(
        X,
        np.asarray([labels[i]["storeys"] for i in ids], np.int64),
        np.full(len(ids), GENERATED_WEIGHT),
        ["generated"] * len(ids),
        [f"seed{seed}/{i}" for i in ids],
        groups,
    )
    return samples, manifest


# -- metrics --------------------------------------------------------------------------------


def scores(truth: np.ndarray, predicted: np.ndarray) -> dict[str, float | int]:
    """``n``, ``exact`` and ``within_one`` (shares 0..1), ``mean_abs_error`` (storeys)."""
    truth = np.asarray(truth)
    predicted = np.asarray(predicted)
    if truth.size == 0:
        return {"n": 0}
    error = np.abs(predicted.astype(np.int64) - truth.astype(np.int64))
    return {
        "n": int(truth.size),
        "exact": round(float(np.mean(error == 0)), 4),
        "within_one": round(float(np.mean(error <= 1)), 4),
        "mean_abs_error": round(float(np.mean(error)), 3),
    }


def scores_by(groups: Sequence[str], truth: np.ndarray, predicted: np.ndarray) -> dict:
    """:func:`scores` per group name, groups sorted."""
    labels = np.asarray(groups)
    return {g: scores(truth[labels == g], predicted[labels == g]) for g in sorted(set(groups))}


def median_baseline(train_storeys: np.ndarray) -> int:
    """The baseline answer: the median storeys of the training part (rounded half up)."""
    return int(np.floor(np.median(train_storeys) + 0.5))


def evaluation_report(truth: np.ndarray, predicted: np.ndarray, baseline: int,
                      groups: Sequence[str]) -> dict[str, Any]:  # fmt: skip
    """Metrics of the model and of the constant baseline on the same pictures."""
    truth = np.asarray(truth)
    return {
        "model": scores(truth, predicted),
        "baseline": {"answer": baseline, **scores(truth, np.full_like(truth, baseline))},
        "by_group": scores_by(groups, truth, np.asarray(predicted)),
        "by_storeys": scores_by([storey_band(int(s)) for s in truth], truth, predicted),
    }


# -- training -------------------------------------------------------------------------------


def make_classifier(seed: int = SEED) -> Any:
    from sklearn.ensemble import ExtraTreesClassifier

    return ExtraTreesClassifier(**FOREST, random_state=seed, n_jobs=1)


def _fit(samples: Samples, seed: int = SEED) -> Any:
    model = make_classifier(seed)
    model.fit(samples.X, samples.y, sample_weight=samples.weight)
    return model


def _predict(model: Any, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    storeys, confidence, *_ = decide(model.predict_proba(X), model.classes_)
    return storeys, confidence


def cross_validate(cmp_train: Samples, extra: Samples, folds: int = 5) -> dict[str, Any]:
    """Out-of-fold answers on the CMP training pictures (crops of a picture stay in its fold).

    Returns metrics, the out-of-fold confidences and the derived review threshold.
    """
    originals = np.flatnonzero(np.array(cmp_train.source) == "cmp")
    names = np.array(cmp_train.name)
    order = np.random.default_rng(SEED).permutation(originals.size)
    fold_of = {names[originals[i]]: k % folds for k, i in enumerate(order)}
    picture_fold = np.array([fold_of[n] for n in names])
    predicted = np.zeros(originals.size, np.int64)
    confidence = np.zeros(originals.size)
    for k in range(folds):
        model = _fit(cmp_train.take(picture_fold != k) + extra)
        held = originals[picture_fold[originals] == k]
        where = np.searchsorted(originals, held)
        predicted[where], confidence[where] = _predict(model, cmp_train.X[held])
    truth = cmp_train.y[originals]
    within = np.abs(predicted - truth) <= 1
    threshold = review_threshold(confidence, within)
    return {
        "folds": folds,
        "metrics": scores(truth, predicted),
        "review_threshold": threshold,
        "share_below_threshold": round(float(np.mean(confidence < threshold)), 4),
        "within_one_at_or_above_threshold": round(
            float(np.mean(within[confidence >= threshold])), 4
        )
        if np.any(confidence >= threshold)
        else None,
        "within_one_below_threshold": round(float(np.mean(within[confidence < threshold])), 4)
        if np.any(confidence < threshold)
        else None,
    }


def review_threshold(confidence: np.ndarray, within_one: np.ndarray) -> float:
    """Largest threshold (0.05 steps) below which at least 5 answers are within one storey
    at most :data:`REVIEW_MAX_WITHIN_ONE` of the time (0.05 when none is)."""
    chosen = 0.05
    for threshold in np.arange(0.05, 1.0, 0.05):
        below = confidence < threshold
        if below.sum() >= 5 and within_one[below].mean() <= REVIEW_MAX_WITHIN_ONE:
            chosen = round(float(threshold), 2)
    return chosen


def _feature_importance(model: Any, top: int = 10) -> list[dict[str, Any]]:
    importance = model.feature_importances_
    order = np.argsort(-importance)[:top]
    return [{"name": FEATURE_NAMES[i], "importance": round(float(importance[i]), 4)} for i in order]


@register_trainer(MODEL_ID)
def train_facade_model(data: Path | None, out_dir: Path) -> ModelCard:
    """Train ``floor-count-facade`` and write it to ``out_dir`` (see the module docstring)."""
    from cut_processes.demo import GENERATOR_VERSION
    from cut_processes.ml.export import check_agreement, to_onnx, write_model

    started = time.perf_counter()
    folder = cmp.find_cmp_dir(data)
    pictures = {p.name: p for p in cmp.load_cmp(folder)}
    train_names, test_names = cmp.cmp_split(list(pictures))
    LOGGER.info("CMP: %d training, %d test pictures", len(train_names), len(test_names))
    cmp_train = cmp_samples([pictures[n] for n in train_names], crops=True)
    cmp_test = cmp_samples([pictures[n] for n in test_names])

    with tempfile.TemporaryDirectory(prefix="cut-facades-") as tmp:
        generated = Samples.empty()
        for seed in GENERATED_TRAIN_SEEDS:
            generated = generated + generated_samples(seed, Path(tmp))[0]
        unseen, _ = generated_samples(GENERATED_EVAL_SEED, Path(tmp))

    cv = cross_validate(cmp_train, generated)
    training = cmp_train + generated
    model = _fit(training)
    onnx_bytes = to_onnx(model, len(FEATURE_NAMES), classifier=True)
    agreement = check_agreement(model, onnx_bytes, np.vstack([cmp_test.X, unseen.X]))
    if agreement < MIN_AGREEMENT:
        raise RuntimeError(f"ONNX and scikit-learn disagree on {1 - agreement:.1%} of rows")

    labels = [int(c) for c in model.classes_]
    baseline = median_baseline(cmp_train.y[np.array(cmp_train.source) == "cmp"])
    test_pred, _ = _predict(model, cmp_test.X)
    unseen_pred, _ = _predict(model, unseen.X)
    test_report = evaluation_report(cmp_test.y, test_pred, baseline, cmp_test.group)
    unseen_report = evaluation_report(unseen.y, unseen_pred, baseline, unseen.group)
    counts = {
        "cmp_train_pictures": len(train_names),
        "cmp_train_crops": int(np.sum(np.array(cmp_train.source) == "cmp-crop")),
        "generated_train_pictures": len(generated.y),
        "cmp_test_pictures": len(test_names),
        "generated_unseen_pictures": len(unseen.y),
    }
    card = {
        "version": MODEL_VERSION,
        "task": "classification",
        "title": "Storeys from a facade photo",
        "description": (
            "Counts the storeys (floors above ground, attic storeys included) of the building "
            "in a rectified facade photo. Classic image features describe the vertical rhythm "
            "of window rows (row profiles of edges and dark pixels, their autocorrelation, "
            "Fourier peak and peak counts); an extra-trees classifier over storey counts "
            "turns them into a count with a probability."
        ),
        "method": "image row-profile features + extra-trees classifier (scikit-learn -> ONNX)",
        "inputs": "one row per picture: cut_processes.analysis.facades.facade_features(image)",
        "outputs": {
            "label": "storeys (int64)",
            "probabilities": "probability of each count in 'labels' (float32, rows x labels)",
        },
        "features": feature_descriptions(),
        "labels": labels,
        "explanation": {
            "method": "Saabas contributions of the trees to the confidence (the probability "
            "of the counts within one storey of the answer), computed in numpy from the ONNX "
            "graph (node sample counts in nodes_hitrates); see "
            "cut_processes.ml.facade.explain_confidence",
            "unit": "probability (the contributions plus the bias add up to the confidence)",
        },
        "decision": "the answer is the count with the most probability within one storey "
        "of it (the Bayes choice for the within-one target; chosen over the most probable "
        "count with cross-validation on the CMP training part). The ONNX 'label' output is "
        "the most probable count; cut_processes.ml.facade.predict_storeys applies the rule.",
        "confidence": "probability that the true count is within one storey of the answer "
        "(the summed probabilities of answer - 1, answer, answer + 1; trees averaged); "
        f"'low'..'high' is the narrowest run of counts around the answer holding >= "
        f"{RANGE_MASS:.0%} of the probability",
        "review_threshold": cv["review_threshold"],
        "review_rule": (
            "needs_review when the confidence is below review_threshold: the largest "
            "threshold (0.05 steps) below which the cross-validated answers on the CMP "
            f"training part are within one storey at most {REVIEW_MAX_WITHIN_ONE:.0%} of the "
            "time (metrics.cmp_train_cross_validation shows both sides)"
        ),
        "training_data": {
            "cmp": {
                "what": "CMP Facade Database, base set: rectified facade photos with annotated "
                "windows, doors, shops and other parts; storey truth derived from the boxes "
                "(rule in docs/models/floor-count-facade.md)",
                "where": "../shared/data/facades/cmp_base (read in place, never copied)",
                "licence": "research use; cite R. Tyleček and R. Šára, Spatial Pattern "
                "Templates for Recognition of Objects with Regular Structure, GCPR 2013",
                "split": {
                    "rule": f"names sorted, permuted with numpy default_rng({cmp.SPLIT_SEED}); "
                    f"the first {cmp.TEST_COUNT} are the test part",
                    "train": train_names,
                    "test": test_names,
                },
                "crops": "per training picture with one annotated building: "
                f"{SIDE_CROPS} sideways crops (50-80 % of the width, same storeys) and top "
                f"crops between two window rows removing 1..{MAX_TOP_CROP} upper storeys; "
                "per picture of several buildings: each annotated facade's columns; storeys "
                "of every crop re-derived from the boxes inside it; sample weight "
                f"{CROP_WEIGHT}",
            },
            "generated": {
                "what": "facade pictures of the generated demo district "
                "(cut_processes.demo, labelled as generated; CC0-1.0)",
                "seeds": list(GENERATED_TRAIN_SEEDS),
                "generator_version": GENERATOR_VERSION,
                "sample_weight": GENERATED_WEIGHT,
            },
            "counts": counts,
        },
        "model": {
            "estimator": "sklearn.ensemble.ExtraTreesClassifier",
            "parameters": {**FOREST, "random_state": SEED},
            "top_feature_importances": _feature_importance(model),
            "onnx_agreement_with_sklearn": agreement,
        },
        "metrics": {
            "cmp_test": test_report,
            "generated_unseen_seed": {"seed": GENERATED_EVAL_SEED, **unseen_report},
            "cmp_train_cross_validation": cv,
        },
        "baseline": {
            "rule": "always answer the median storeys of the CMP training part",
            "answer": baseline,
        },
        "quality_bar": {"cmp_test_within_one_min": 0.85, "must_beat": "baseline"},
        "intended_use": (
            "Estimate the storeys of buildings that lack the attribute (LoD2 tiles without "
            "storeysAboveGround), from street-level facade photos that are rectified (the "
            "facade plane fills the picture, verticals vertical), as one signal next to "
            "heights; answers with needs_review are for a person to check."
        ),
        "limits": (
            "Trained on about 200 European city facades (mostly 3-7 storeys, Prague and "
            "other cities of the CMP set) and on generated pictures: expect errors of one "
            "storey often and larger errors for towers (10+ storeys are rare in training), "
            "for pictures of several buildings (the truth counts the tallest annotated "
            "building, the picture mixes them), for facades hidden by trees or scaffolding, "
            "for mezzanines and shop fronts spanning two storeys, and for photos that are "
            "not rectified or show sky, street or roofs over much of the picture. It says "
            "nothing about basements. It is not meant for decisions about individual "
            "people or for checking building permits."
        ),
        "seed": SEED,
    }
    # No training time in the card: retraining must reproduce the file byte for byte.
    LOGGER.info("trained %s in %.1f s", MODEL_ID, time.perf_counter() - started)
    return write_model(out_dir, MODEL_ID, onnx_bytes, card)


# -- evaluation of the served model ---------------------------------------------------------


@register_evaluator(MODEL_ID)
def evaluate_facade_model(data: Path | None, *, generated: bool = True) -> dict[str, Any]:
    """Measure the model the registry serves on the CMP test part and (``generated``) an
    unseen demo district, against the median baseline of the CMP training part, all in
    this run."""
    started = time.perf_counter()
    folder = cmp.find_cmp_dir(data)
    pictures = {p.name: p for p in cmp.load_cmp(folder)}
    train_names, test_names = cmp.cmp_split(list(pictures))
    baseline = median_baseline(np.array([pictures[n].storeys for n in train_names]))
    test = cmp_samples([pictures[n] for n in test_names])
    model = get_model(MODEL_ID)
    prediction = predict_storeys_from_features(test.X)
    result: dict[str, Any] = {
        "model": model.ref,
        "sha256": model.card.sha256,
        "data": str(folder),
        "cmp_test": evaluation_report(test.y, prediction.storeys, baseline, test.group),
    }
    threshold = model.card.review_threshold
    flagged = prediction.confidence < threshold
    within = np.abs(prediction.storeys - test.y) <= 1
    result["cmp_test"]["needs_review"] = {
        "threshold": threshold,
        "share": round(float(flagged.mean()), 4),
        "within_one_not_flagged": round(float(within[~flagged].mean()), 4)
        if (~flagged).any()
        else None,
        "within_one_flagged": round(float(within[flagged].mean()), 4) if flagged.any() else None,
    }
    if generated:
        with tempfile.TemporaryDirectory(prefix="cut-facades-") as tmp:
            unseen, _ = generated_samples(GENERATED_EVAL_SEED, Path(tmp))
        unseen_pred = predict_storeys_from_features(unseen.X).storeys
        result["generated_unseen_seed"] = {
            "seed": GENERATED_EVAL_SEED,
            **evaluation_report(unseen.y, unseen_pred, baseline, unseen.group),
        }
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result
