"""The model registry: finds, verifies, loads and caches the suite's ONNX models.

A model is two files in a models folder: ``<id>.onnx`` and ``<id>.card.json`` (its model
card; ``sha256`` of the ONNX file is in the card). Folders searched, first match wins:

1. ``$CUT_MODELS_DIR`` (several folders separated by ``os.pathsep``): a city's own models,
   which add to or override the shipped ones;
2. the package's ``cut_processes/models/`` (the shipped models, rebuilt by ``cut-twin train``).

:func:`get_model` verifies the sha256 when it first loads a model and then keeps one
onnxruntime session per model and worker process. No pickle or joblib file is ever loaded.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

LOGGER = logging.getLogger(__name__)

#: Environment variable naming extra model folders (searched before the shipped models).
MODELS_DIR_ENV = "CUT_MODELS_DIR"
#: Threads per onnxruntime session (workers run in parallel; one thread each by default).
THREADS_ENV = "CUT_ONNX_THREADS"
PACKAGE_MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
CARD_SUFFIX = ".card.json"


class ModelNotFoundError(LookupError):
    """No model of that id in any models folder."""

    def __init__(self, model_id: str, searched: list[Path]):
        self.model_id = model_id
        self.searched = searched
        where = ", ".join(str(p) for p in searched) or "(no folders)"
        super().__init__(
            f"model {model_id!r} not found: no {model_id}{CARD_SUFFIX} with {model_id}.onnx "
            f"in {where}"
        )


class ModelIntegrityError(RuntimeError):
    """A model file is not what its card says (sha256 mismatch), or the card is unusable."""

    def __init__(self, message: str, *, path: Path | None = None,
                 expected: str | None = None, actual: str | None = None):  # fmt: skip
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(message)

    @classmethod
    def sha256_mismatch(cls, path: Path, expected: str, actual: str) -> ModelIntegrityError:
        return cls(
            f"model file {path} does not match its card: sha256 expected {expected}, "
            f"actual {actual}; retrain it (cut-twin train) or restore the file",
            path=path, expected=expected, actual=actual,
        )  # fmt: skip


def models_dirs() -> list[Path]:
    """Folders searched for models, first match wins: ``$CUT_MODELS_DIR`` then the package's."""
    extra = os.environ.get(MODELS_DIR_ENV, "")
    dirs = [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    return [*dirs, PACKAGE_MODELS_DIR]


@dataclass(frozen=True)
class ModelCard:
    """A model card: ``id``, ``version`` and the full card document in ``raw``."""

    id: str
    version: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def from_dict(cls, raw: dict[str, Any], source: Path | None = None) -> ModelCard:
        where = f" ({source})" if source else ""
        for key in ("id", "version", "sha256", "features"):
            if key not in raw:
                raise ModelIntegrityError(f"model card{where} lacks {key!r}", path=source)
        if not isinstance(raw["features"], list) or not raw["features"]:
            raise ModelIntegrityError(f"model card{where}: 'features' must be a list", path=source)
        return cls(str(raw["id"]), str(raw["version"]), raw)

    @property
    def task(self) -> str:
        return str(self.raw.get("task", ""))

    @property
    def features(self) -> list[str]:
        """Feature names in the order of the model's input columns."""
        return [f["name"] if isinstance(f, dict) else str(f) for f in self.raw["features"]]

    @property
    def labels(self) -> list[Any]:
        return list(self.raw.get("labels", []))

    @property
    def review_threshold(self) -> float:
        """Outputs with a confidence below this need a human look (``needs_review``)."""
        return float(self.raw.get("review_threshold", 0.5))

    @property
    def sha256(self) -> str:
        return str(self.raw["sha256"])


def card_href(model_id: str) -> str:
    """Path of a model's card document on the server (the lead's ``/models/{id}`` route)."""
    return f"/models/{model_id}"


def _find(model_id: str) -> tuple[Path, Path]:
    if not model_id or "/" in model_id or "\\" in model_id or model_id.startswith("."):
        raise ModelNotFoundError(model_id, [])
    searched = models_dirs()
    for folder in searched:
        card, onnx_file = folder / f"{model_id}{CARD_SUFFIX}", folder / f"{model_id}.onnx"
        if card.is_file() and onnx_file.is_file():
            return card, onnx_file
    raise ModelNotFoundError(model_id, searched)


def _read_card(path: Path) -> ModelCard:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelIntegrityError(f"cannot read model card {path}: {err}", path=path) from err
    if not isinstance(raw, dict):
        raise ModelIntegrityError(f"model card {path} is not a JSON object", path=path)
    card = ModelCard.from_dict(raw, path)
    expected_id = path.name[: -len(CARD_SUFFIX)]
    if card.id != expected_id:
        raise ModelIntegrityError(f"model card {path} names id {card.id!r}", path=path)
    return card


class LoadedModel:
    """A verified model with its onnxruntime session (use :func:`get_model`)."""

    def __init__(self, card: ModelCard, onnx_bytes: bytes, path: Path):
        import onnxruntime as ort

        self.card = card
        self.path = path
        self._onnx_bytes = onnx_bytes
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get(THREADS_ENV, "1"))
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(
            onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [o.name for o in self._session.get_outputs()]
        self._explainer: Any = None
        self._lock = threading.Lock()

    @property
    def ref(self) -> str:
        """``id@version``, as every AI output feature names its model."""
        return f"{self.card.id}@{self.card.version}"

    @property
    def provenance(self) -> dict[str, str]:
        return {
            "id": self.card.id,
            "version": self.card.version,
            "sha256": self.card.sha256,
            "card": card_href(self.card.id),
        }

    def _checked(self, features: np.ndarray) -> np.ndarray:
        X = np.asarray(features, dtype=np.float32)
        n = len(self.card.features)
        if X.ndim != 2 or X.shape[1] != n:
            raise ValueError(
                f"model {self.ref} expects a 2-D array with {n} feature columns "
                f"({', '.join(self.card.features[:3])}, ...), got shape {X.shape}"
            )
        return np.ascontiguousarray(X)

    def run(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """All ONNX outputs by name for the rows of ``features`` (rows x features, float32).

        Classifiers give ``label`` and ``probabilities`` (rows x classes, in the order of
        ``card.labels``), regressors ``variable``.
        """
        X = self._checked(features)
        if X.shape[0] == 0:
            raise ValueError(f"model {self.ref}: no rows to run")
        values = self._session.run(None, {self._input: X})
        return dict(zip(self._outputs, (np.asarray(v) for v in values), strict=True))

    def explainer(self) -> Any:
        """The numpy explainer built from this model's graph (built once, on first use)."""
        with self._lock:
            if self._explainer is None:
                import onnx

                from cut_processes.ml.explain import explainer_for

                self._explainer = explainer_for(onnx.load_from_string(self._onnx_bytes))
            return self._explainer

    def contributions(self, features: np.ndarray) -> Any:
        """Full per-feature contributions (:class:`cut_processes.ml.explain.Contributions`)."""
        return self.explainer().contributions(self._checked(features))

    def explain(
        self, features: np.ndarray, top: int = 3, *, classes: Sequence[Any] | None = None
    ) -> list[list[tuple[str, float]]]:
        """Per row the ``top`` features that moved the output most: (name, signed weight).

        Classifiers: contributions to the score of the predicted class (probability for
        forests), or of ``classes[row]`` when given (the label a caller reports);
        regressors: to the prediction. Sorted by absolute weight, largest first.
        """
        X = self._checked(features)
        if X.shape[0] == 0:
            return []
        explainer = self.explainer()
        outputs = list(explainer.outputs)
        if len(outputs) > 1 and ("label" in self._outputs or classes is not None):
            chosen = list(classes) if classes is not None else self.run(X)["label"].ravel()
            if len(chosen) != X.shape[0]:
                raise ValueError(f"classes: {len(chosen)} labels for {X.shape[0]} rows")
            lookup = {_plain(label): i for i, label in enumerate(outputs)}
            try:
                columns = [lookup[_plain(label)] for label in chosen]
            except KeyError as err:
                raise ValueError(f"classes: {err.args[0]!r} is not a label of {self.ref}") from err
        else:
            columns = [0] * X.shape[0]
        names = self.card.features
        weights = explainer.column_contributions(X, np.asarray(columns, dtype=np.int64))
        order = np.argsort(-np.abs(weights), axis=1, kind="stable")[:, : max(0, top)]
        picked = np.take_along_axis(weights, order, axis=1)
        return [
            [(names[i], float(w)) for i, w in zip(row_order, row_weights, strict=True)]
            for row_order, row_weights in zip(order.tolist(), picked.tolist(), strict=True)
        ]


def _plain(label: Any) -> Any:
    """numpy scalars and Python values as one hashable kind (3 == np.int64(3))."""
    return label.item() if isinstance(label, np.generic) else label


_CACHE: dict[tuple[int, str, str], LoadedModel] = {}
_CACHE_LOCK = threading.Lock()


def get_model(model_id: str) -> LoadedModel:
    """The model ``model_id``: verified (sha256) on first load, then cached per process.

    :raises ModelNotFoundError: no folder of :func:`models_dirs` holds the model.
    :raises ModelIntegrityError: the ONNX file's sha256 differs from the card's.
    """
    card_path, onnx_path = _find(model_id)
    key = (os.getpid(), model_id, str(onnx_path.resolve()))
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is not None:
            return cached
        if any(k[0] != key[0] for k in _CACHE):  # forked: sessions of the parent are not ours
            _CACHE.clear()
        card = _read_card(card_path)
        onnx_bytes = onnx_path.read_bytes()
        actual = hashlib.sha256(onnx_bytes).hexdigest()
        if actual != card.sha256:
            raise ModelIntegrityError.sha256_mismatch(onnx_path, card.sha256, actual)
        model = LoadedModel(card, onnx_bytes, onnx_path)
        _CACHE[key] = model
        LOGGER.info("loaded model %s from %s", model.ref, onnx_path)
        return model


def clear_cache() -> None:
    """Forget every loaded model (tests; after replacing model files in place)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def list_cards() -> list[ModelCard]:
    """The cards of every available model (an id in ``$CUT_MODELS_DIR`` hides the shipped
    one), sorted by id. Unreadable cards are logged and left out."""
    found: dict[str, ModelCard] = {}
    for folder in models_dirs():
        if not folder.is_dir():
            continue
        for card_path in sorted(folder.glob(f"*{CARD_SUFFIX}")):
            model_id = card_path.name[: -len(CARD_SUFFIX)]
            if model_id in found or not (folder / f"{model_id}.onnx").is_file():
                continue
            try:
                found[model_id] = _read_card(card_path)
            except ModelIntegrityError as err:
                LOGGER.warning("skipping model card: %s", err)
    return [found[k] for k in sorted(found)]


def card_document(model_id: str) -> dict[str, Any]:
    """The card of ``model_id`` as served at ``/models/{id}`` (a copy; no file paths).

    Adds ``source``: ``"shipped"`` or ``"local"`` (from ``$CUT_MODELS_DIR``).
    :raises ModelNotFoundError: unknown id (the route answers 404).
    """
    card_path, _ = _find(model_id)
    document = copy.deepcopy(_read_card(card_path).raw)
    document["source"] = "shipped" if card_path.parent == PACKAGE_MODELS_DIR else "local"
    return document
