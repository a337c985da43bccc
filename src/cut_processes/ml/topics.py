"""Topic models of citizen contributions: training, ONNX export, inference, evaluation.

A topic model is a linear classifier over TF-IDF features of *preprocessed* German text
(:func:`cut_processes.analysis.german.preprocess`: stems, compound parts, no stopwords):

* the ONNX graph takes one string per contribution (``input``: the preprocessed text, tokens
  separated by single spaces) and gives ``tfidf`` (the TF-IDF vector, word 1-2 grams,
  sublinear tf, l2) and ``probabilities`` (rows x labels): a sigmoid per label for
  multi-label models (one-vs-rest logistic regressions), a softmax for single-label ones;
* preprocessing runs in Python before the graph because stemming and compound splitting have
  no ONNX operators; the compound lexicon ships in the model card (``preprocessing``), so
  training and inference split words the same way;
* explanations are the terms with the largest ``coefficient x tf-idf`` for the chosen label,
  read from the graph's own weights;
* labels are assigned when their probability reaches the label's threshold in the card
  (multi-label), or the best label (single-label).

The baseline every evaluation measures in the same run is the method of the published CIMT
experiments: TF-IDF (word 1-2 grams, sublinear tf) on the raw text + linear SVM.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cut_processes.analysis.german import Lexicon, contribution_text, preprocess

OTTENSEN_MODEL = "dipas-mobility-topics"
CYCLING_MODEL = "cycling-dialogue-categories"
OTTENSEN_FILE = "dipas_ottensen_thematic.csv"
CYCLING_FILE = "cycling_dialogues_bonn_moers.csv"
VERSION = "1.0.0"
SEED = 42
#: Where the shared participation data lies relative to the project root.
DEFAULT_DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "participation"
_TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


def data_dir(data: Path | None) -> Path:
    """The folder of the participation CSVs (``data`` or ``../shared/data/participation``)."""
    folder = Path(data) if data is not None else Path(
        os.environ.get("CUT_PARTICIPATION_DATA", DEFAULT_DATA))
    if folder.is_file():
        folder = folder.parent
    return folder


# --- data ------------------------------------------------------------------------------------

@dataclass
class Corpus:
    """Documents with their labels: ``targets`` is rows x labels (0/1)."""

    ids: list[str]
    texts: list[str]
    targets: np.ndarray
    labels: list[str]
    groups: list[str]
    multilabel: bool


def load_ottensen(data: Path | None = None) -> Corpus:
    """FreiRaum Ottensen: 12 binary topic labels (multi-label), label names as in the file."""
    import csv

    from cut_processes.io.cimt import read_cimt

    path = data_dir(data) / OTTENSEN_FILE
    result = read_cimt([path])
    with path.open(encoding="utf-8-sig", newline="") as fh:
        header = next(csv.reader(fh))
    labels = [c for c in header if c not in ("document_id", "title", "text", "url")]
    rows = [f["properties"] for f in result.features]
    targets = np.array([[int(lab in (p["topics"] or [])) for lab in labels] for p in rows])
    return Corpus([p["id"] for p in rows], [contribution_text(p["title"], p["text"])
                  for p in rows], targets, labels, ["Ottensen"] * len(rows), True)


def load_cycling(data: Path | None = None) -> Corpus:
    """Cycling dialogues Bonn and Moers: the 8 main categories (single-label)."""
    from cut_processes.io.cimt import read_cimt

    result = read_cimt([data_dir(data) / CYCLING_FILE])
    rows = [f["properties"] for f in result.features]
    labels = sorted({p["category"] for p in rows if p["category"]})
    rows = [p for p in rows if p["category"]]
    targets = np.array([[int(p["category"] == lab) for lab in labels] for p in rows])
    groups = ["Bonn" if "Bonn" in (p["project"] or "") else "Moers" for p in rows]
    return Corpus([p["id"] for p in rows], [contribution_text(p["title"], p["text"])
                  for p in rows], targets, labels, groups, False)


# --- fitting -----------------------------------------------------------------------------------

@dataclass
class FittedTopics:
    """A fitted scikit-learn topic model (vectorizer + one linear layer) and its lexicon."""

    vectorizer: Any
    coef: np.ndarray  # features x labels
    intercept: np.ndarray  # labels
    labels: list[str]
    multilabel: bool
    lexicon: Lexicon
    thresholds: np.ndarray

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        docs = [preprocess(t, self.lexicon) for t in texts]
        return _activate(self.vectorizer.transform(docs) @ self.coef + self.intercept,
                         self.multilabel)


def _activate(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    logits = np.asarray(logits, dtype=np.float64)
    if multilabel:
        return 1.0 / (1.0 + np.exp(-logits))
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _vectorizer():
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Tokens are already stemmed and lowercased; single spaces separate them.
    return TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+",
                           lowercase=False, min_df=1, dtype=np.float32)


def fit_topics(texts: Sequence[str], targets: np.ndarray, labels: Sequence[str], *,
               multilabel: bool, lexicon_texts: Sequence[str] | None = None,
               C: float | None = None, sample_weight: np.ndarray | None = None) -> FittedTopics:
    """Fit the topic model on raw (redacted) texts and 0/1 ``targets`` (rows x labels).

    :param lexicon_texts: texts to learn the compound lexicon from (default ``texts``);
        unlabelled texts of the same proceeding help.
    """
    from sklearn.linear_model import LogisticRegression

    targets = np.asarray(targets, dtype=int)
    lexicon = Lexicon.learn(lexicon_texts if lexicon_texts is not None else texts)
    docs = [preprocess(t, lexicon) for t in texts]
    vectorizer = _vectorizer()
    X = vectorizer.fit_transform(docs)
    n_labels = len(labels)
    coef = np.zeros((X.shape[1], n_labels), dtype=np.float64)
    intercept = np.zeros(n_labels, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if multilabel:
            for j in range(n_labels):
                y = targets[:, j]
                if y.min() == y.max():  # a label never (or always) seen: constant score
                    intercept[j] = 8.0 if y.max() else -8.0
                    continue
                model = LogisticRegression(C=C or 2.0, class_weight="balanced", max_iter=3000)
                model.fit(X, y, sample_weight=sample_weight)
                coef[:, j], intercept[j] = model.coef_[0], model.intercept_[0]
        else:
            y = targets.argmax(axis=1)
            present = np.unique(y)
            # saga with a loose tolerance: as good as lbfgs here (Bonn -> Moers) at a tenth
            # of the time; seeded, so refits are reproducible.
            model = LogisticRegression(C=C or 10.0, class_weight="balanced", solver="saga",
                                       tol=1e-3, max_iter=300, random_state=SEED)
            if len(present) == 1:
                intercept[present[0]] = 8.0
            else:
                model.fit(X, y, sample_weight=sample_weight)
                if len(present) == 2:  # softmax of +-half the binary logit = its sigmoid
                    coef[:, present[0]], coef[:, present[1]] = -model.coef_[0] / 2, \
                        model.coef_[0] / 2
                    intercept[present[0]], intercept[present[1]] = \
                        -model.intercept_[0] / 2, model.intercept_[0] / 2
                else:
                    coef[:, present] = model.coef_.T
                    intercept[present] = model.intercept_
    thresholds = np.full(n_labels, 0.5)
    return FittedTopics(vectorizer, coef, intercept, list(labels), multilabel, lexicon,
                        thresholds)


def assign(probabilities: np.ndarray, thresholds: np.ndarray, multilabel: bool) -> np.ndarray:
    """0/1 label assignment: thresholds per label (multi-label) or the best label."""
    if multilabel:
        return (probabilities >= thresholds).astype(int)
    out = np.zeros_like(probabilities, dtype=int)
    out[np.arange(len(out)), probabilities.argmax(axis=1)] = 1
    return out


# --- ONNX --------------------------------------------------------------------------------------

def to_onnx(fitted: FittedTopics) -> bytes:
    """ONNX graph: preprocessed text -> ``tfidf``, ``probabilities``."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType

    vect = fitted.vectorizer
    model = convert_sklearn(
        vect, initial_types=[("input", StringTensorType([None, 1]))],
        target_opset=_TARGET_OPSET,
        options={id(vect): {"separators": [" "], "tokenexp": None, "locale": "C.UTF-8"}},
    )
    graph = model.graph
    _fix_sublinear_tf(graph)
    tfidf_name = graph.output[0].name
    graph.initializer.extend([
        numpy_helper.from_array(fitted.coef.astype(np.float32), "topic_coef"),
        numpy_helper.from_array(fitted.intercept.astype(np.float32), "topic_intercept"),
    ])
    graph.node.extend([
        helper.make_node("Identity", [tfidf_name], ["tfidf"], name="TfidfOut"),
        helper.make_node("MatMul", [tfidf_name, "topic_coef"], ["topic_mm"], name="TopicMatMul"),
        helper.make_node("Add", ["topic_mm", "topic_intercept"], ["topic_logits"],
                         name="TopicAdd"),
        helper.make_node("Sigmoid", ["topic_logits"], ["probabilities"], name="TopicSigmoid")
        if fitted.multilabel else
        helper.make_node("Softmax", ["topic_logits"], ["probabilities"], axis=1,
                         name="TopicSoftmax"),
    ])
    del graph.output[:]
    n = len(fitted.labels)
    graph.output.extend([
        helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, n]),
        helper.make_tensor_value_info("tfidf", TensorProto.FLOAT, [None, len(
            vect.vocabulary_)]),
    ])
    graph.name = "contribution_topics"  # skl2onnx names graphs by a random uuid
    # ... and orders opset imports by a set: sort them so retraining gives the same bytes.
    opsets = sorted((o.domain, o.version) for o in model.opset_import)
    del model.opset_import[:]
    for domain, version in opsets:
        model.opset_import.add(domain=domain, version=version)
    model.doc_string = "contribution topics: preprocessed German text -> label probabilities"
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _fix_sublinear_tf(graph: Any) -> None:
    """skl2onnx writes sublinear tf as ``log(1 + tf)``; scikit-learn computes ``1 + log(tf)``
    for tf > 0 (0 stays 0). Replace the two nodes by the scikit-learn formula."""
    from onnx import helper, numpy_helper

    nodes = list(graph.node)
    add = next((n for n in nodes if n.op_type == "Add" and n.output[0] == "plus1"), None)
    log = next((n for n in nodes if n.op_type == "Log" and n.input[0] == "plus1"), None)
    if add is None or log is None:
        raise RuntimeError("unexpected skl2onnx graph: no sublinear tf nodes to fix")
    counts, out = add.input[0], log.output[0]
    unused = [i for i in graph.initializer if i.name == add.input[1]]
    for item in unused:
        graph.initializer.remove(item)
    graph.initializer.extend([numpy_helper.from_array(np.array(1.0, dtype=np.float32),
                                                      "subl_one"),
                              numpy_helper.from_array(np.array(0.0, dtype=np.float32),
                                                      "subl_zero")])
    new = [
        helper.make_node("Greater", [counts, "subl_zero"], ["subl_mask"], name="SublMask"),
        helper.make_node("Max", [counts, "subl_one"], ["subl_clip"], name="SublClip"),
        helper.make_node("Log", ["subl_clip"], ["subl_log"], name="SublLog"),
        helper.make_node("Add", ["subl_log", "subl_one"], ["subl_plus"], name="SublPlus"),
        helper.make_node("Where", ["subl_mask", "subl_plus", "subl_zero"], [out],
                         name="SublWhere"),
    ]
    index = nodes.index(add)
    kept = [n for n in nodes if n is not add and n is not log]
    del graph.node[:]
    graph.node.extend(kept[:index] + new + kept[index:])


class TopicModel:
    """An ONNX topic model with what explanations need (vocabulary, coefficients)."""

    def __init__(self, onnx_bytes: bytes, labels: Sequence[str], *, multilabel: bool,
                 lexicon: Lexicon, thresholds: Sequence[float], ref: str = "in-job",
                 review_threshold: float = 0.5):
        import onnx
        import onnxruntime as ort
        from onnx import helper, numpy_helper

        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("CUT_ONNX_THREADS", "1"))
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(onnx_bytes, sess_options=options,
                                             providers=["CPUExecutionProvider"])
        graph = onnx.load_from_string(onnx_bytes).graph
        self.coef = numpy_helper.to_array(
            next(i for i in graph.initializer if i.name == "topic_coef"))
        node = next(n for n in graph.node if n.op_type == "TfIdfVectorizer")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        self.terms = _terms(attrs, self.coef.shape[0])
        self.labels = list(labels)
        self.multilabel = multilabel
        self.lexicon = lexicon
        self.thresholds = np.asarray(thresholds, dtype=np.float64)
        self.ref = ref
        self.review_threshold = float(review_threshold)
        self.sha256 = hashlib.sha256(onnx_bytes).hexdigest()

    @classmethod
    def from_fitted(cls, fitted: FittedTopics, ref: str = "in-job") -> TopicModel:
        return cls(to_onnx(fitted), fitted.labels, multilabel=fitted.multilabel,
                   lexicon=fitted.lexicon, thresholds=fitted.thresholds, ref=ref)

    def preprocess(self, texts: Sequence[str]) -> list[str]:
        return [preprocess(t, self.lexicon) for t in texts]

    def run(self, docs: Sequence[str], batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities (rows x labels) and tf-idf (rows x terms) of preprocessed docs."""
        probs, tfidf = [], []
        for start in range(0, len(docs), batch):
            chunk = np.array([[d] for d in docs[start:start + batch]], dtype=object)
            p, t = self._session.run(["probabilities", "tfidf"], {"input": chunk})
            probs.append(p)
            tfidf.append(t)
        if not probs:
            return np.zeros((0, len(self.labels))), np.zeros((0, len(self.terms)))
        return np.vstack(probs).astype(np.float64), np.vstack(tfidf)

    def probabilities(self, docs: Sequence[str], batch: int = 512) -> np.ndarray:
        """Probabilities only (the fast path for benchmarks)."""
        out = []
        for start in range(0, len(docs), batch):
            chunk = np.array([[d] for d in docs[start:start + batch]], dtype=object)
            out.append(self._session.run(["probabilities"], {"input": chunk})[0])
        return np.vstack(out).astype(np.float64)

    def explain(self, tfidf_row: np.ndarray, label: int, top: int = 5) -> list[dict[str, Any]]:
        """Terms that drove ``label``: largest ``coefficient x tf-idf``, positive only."""
        nz = np.flatnonzero(tfidf_row)
        if nz.size == 0:
            return []
        weights = tfidf_row[nz] * self.coef[nz, label]
        order = np.argsort(-weights, kind="stable")[:top]
        return [{"term": self.terms[nz[i]], "weight": round(float(weights[i]), 4)}
                for i in order if weights[i] > 0]


def _terms(attrs: dict[str, Any], n_features: int) -> list[str]:
    """Column index -> n-gram text, from the TfIdfVectorizer operator's attributes."""
    pool = [s.decode() if isinstance(s, bytes) else s for s in attrs["pool_strings"]]
    counts = [*list(attrs["ngram_counts"]), len(pool)]
    indexes = list(attrs["ngram_indexes"])
    grams: list[str] = []
    for n, (start, end) in enumerate(itertools.pairwise(counts), start=1):
        grams.extend(" ".join(pool[i:i + n]) for i in range(start, end, n))
    terms = [""] * n_features
    for gram, column in zip(grams, indexes, strict=False):
        if column < n_features:
            terms[column] = gram
    return terms


_SHIPPED: dict[tuple[str, str], TopicModel] = {}
_LOCK = threading.Lock()


def shipped_model(model_id: str) -> tuple[TopicModel, Any]:
    """A shipped (or ``$CUT_MODELS_DIR``) topic model through the registry: verified sha256.

    Returns the :class:`TopicModel` and the registry's ``LoadedModel`` (card, provenance).
    The registry's own ``run`` takes float matrices; text models need a string input, so the
    session here is built from the same verified file.
    """
    from cut_processes.ml.registry import get_model

    loaded = get_model(model_id)
    key = (model_id, loaded.card.sha256)
    with _LOCK:
        model = _SHIPPED.get(key)
        if model is None:
            raw = loaded.card.raw
            onnx_bytes = Path(loaded.path).read_bytes()
            if hashlib.sha256(onnx_bytes).hexdigest() != loaded.card.sha256:
                from cut_processes.ml.registry import ModelIntegrityError

                raise ModelIntegrityError(f"model file {loaded.path} changed after loading")
            prep = raw.get("preprocessing") or {}
            model = TopicModel(
                onnx_bytes, raw["labels"], multilabel=raw.get("multilabel", False),
                lexicon=Lexicon.from_json(prep.get("compound_lexicon")),
                thresholds=raw.get("label_thresholds") or [0.5] * len(raw["labels"]),
                ref=loaded.ref, review_threshold=loaded.card.review_threshold,
            )
            _SHIPPED[key] = model
    return model, loaded


# --- metrics and baseline ----------------------------------------------------------------------

def f1_scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """micro- and macro-F1 (labels with no true and no predicted rows count as F1 0 for macro
    only when they have true rows; absent labels are left out of macro)."""
    from sklearn.metrics import f1_score

    present = np.flatnonzero(truth.sum(axis=0) > 0)
    return {
        "micro_f1": round(float(f1_score(truth, pred, average="micro", zero_division=0)), 4),
        "macro_f1": round(float(f1_score(truth[:, present], pred[:, present],
                                         average="macro", zero_division=0)), 4),
    }


def baseline_predict(train_texts: Sequence[str], train_targets: np.ndarray,
                     test_texts: Sequence[str], multilabel: bool) -> np.ndarray:
    """The CIMT baseline: TF-IDF (word 1-2 grams, sublinear tf) + linear SVM."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.svm import LinearSVC

    vect = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)
    X = vect.fit_transform(train_texts)
    Xt = vect.transform(test_texts)
    n = train_targets.shape[1]
    out = np.zeros((len(test_texts), n), dtype=int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if multilabel:
            for j in range(n):
                y = train_targets[:, j]
                if y.min() == y.max():
                    out[:, j] = y.max()
                    continue
                out[:, j] = LinearSVC(random_state=SEED).fit(X, y).predict(Xt)
        else:
            y = train_targets.argmax(axis=1)
            pred = LinearSVC(random_state=SEED).fit(X, y).predict(Xt)
            out[np.arange(len(pred)), pred] = 1
    return out


def cross_validate(texts: Sequence[str], targets: np.ndarray, labels: Sequence[str], *,
                   multilabel: bool, folds: int = 5, baseline: bool = False,
                   seed: int = SEED) -> dict[str, Any]:
    """Fixed k-fold CV (shuffled with ``seed``): micro/macro-F1 of the model (and baseline)."""
    from sklearn.model_selection import KFold

    texts = list(texts)
    targets = np.asarray(targets, dtype=int)
    folds = max(2, min(folds, len(texts)))
    pred = np.zeros_like(targets)
    base = np.zeros_like(targets)
    probs = np.zeros(targets.shape, dtype=np.float64)
    for train, test in KFold(folds, shuffle=True, random_state=seed).split(texts):
        fitted = fit_topics([texts[i] for i in train], targets[train], labels,
                            multilabel=multilabel)
        p = fitted.probabilities([texts[i] for i in test])
        probs[test] = p
        pred[test] = assign(p, fitted.thresholds, multilabel)
        if baseline:
            base[test] = baseline_predict([texts[i] for i in train], targets[train],
                                          [texts[i] for i in test], multilabel)
    result: dict[str, Any] = {"folds": folds, "documents": len(texts), **f1_scores(targets, pred)}
    if baseline:
        result["baseline"] = f1_scores(targets, base)
    result["_probabilities"] = probs
    result["_predictions"] = pred
    return result


def review_threshold(confidence: np.ndarray, correct: np.ndarray, target: float = 0.9) -> float:
    """Smallest confidence above which at least ``target`` of the predictions were right
    (cross-validated); capped to [0.3, 0.9]."""
    order = np.argsort(-confidence)
    hits = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(hits >= target)
    value = float(confidence[order][ok[-1]]) if ok.size else 0.9
    return round(min(0.9, max(0.3, value)), 3)


# --- shipped models: trainers ------------------------------------------------------------------

def _confidence(probs: np.ndarray, assigned: np.ndarray, multilabel: bool) -> np.ndarray:
    """Confidence of a row: single-label the best probability; multi-label the least certain
    decision (distance of every label's probability from its threshold, mapped to 0..1)."""
    if not multilabel:
        return probs.max(axis=1)
    certainty = np.where(assigned == 1, probs, 1.0 - probs)
    return certainty.min(axis=1)


def _write(fitted: FittedTopics, model_id: str, out_dir: Path, card: dict[str, Any]) -> Any:
    from cut_processes.ml.export import write_model

    onnx_bytes = to_onnx(fitted)
    # sklearn and ONNX must agree (probabilities within 1e-4 on the training texts).
    model = TopicModel(onnx_bytes, fitted.labels, multilabel=fitted.multilabel,
                       lexicon=fitted.lexicon, thresholds=fitted.thresholds)
    sample = card.pop("_agreement_texts")
    onnx_p = model.probabilities(model.preprocess(sample))
    sk_p = fitted.probabilities(sample)
    diff = float(np.max(np.abs(onnx_p - sk_p)))
    if diff > 1e-4:
        raise RuntimeError(f"{model_id}: ONNX and scikit-learn disagree by {diff}")
    card["onnx_agreement"] = {"rows": len(sample), "max_abs_probability_difference":
                              float(f"{diff:.2e}")}
    return write_model(out_dir, model_id, onnx_bytes, card)


def _common_card(fitted: FittedTopics, corpus: Corpus) -> dict[str, Any]:
    return {
        "version": VERSION,
        "title": "",
        "task": "multi-label text classification" if fitted.multilabel
        else "single-label text classification",
        "multilabel": fitted.multilabel,
        "input": "one string per contribution: preprocess(title + ' . ' + text) of "
                 "cut_processes.analysis.german (redacted, HTML removed, lowercased, "
                 "stopwords removed, compounds split, Snowball-stemmed), tokens separated by "
                 "single spaces",
        "outputs": {"probabilities": "rows x labels (float32)",
                    "tfidf": "rows x terms (float32), for explanations"},
        "features": [{"name": "text", "type": "string"}],
        "labels": fitted.labels,
        "label_thresholds": [round(float(t), 3) for t in fitted.thresholds],
        "method": "TF-IDF (word 1-2 grams of stems and compound parts, sublinear tf, l2) + "
                  "logistic regression (class_weight balanced)" + (
                      ", one per label" if fitted.multilabel else ", multinomial"),
        "preprocessing": {
            "function": "cut_processes.analysis.german.preprocess",
            "stopwords": "stop-words (de) + forum filler words",
            "stemmer": "Snowball German (snowballstemmer)",
            "compound_lexicon": fitted.lexicon.to_json(),
        },
        "vocabulary_size": len(fitted.vectorizer.vocabulary_),
        "training_documents": len(corpus.ids),
        "seed": SEED,
        "_agreement_texts": corpus.texts[:200],
    }


def train_ottensen(data: Path | None, out_dir: Path, evaluation: dict | None = None) -> Any:
    corpus = load_ottensen(data)
    cv = evaluation or evaluate_ottensen(corpus)
    fitted = fit_topics(corpus.texts, corpus.targets, corpus.labels, multilabel=True)
    card = _common_card(fitted, corpus)
    probs, pred = cv["_probabilities"], cv["_predictions"]
    conf = _confidence(probs, pred, True)
    correct = (pred == corpus.targets).all(axis=1).astype(float)
    card.update({
        "title": "Mobility topics of DIPAS contributions (FreiRaum Ottensen)",
        "training_data": {
            "name": "CIMT corpus: DIPAS FreiRaum Ottensen (Hamburg, Aug 2021), 483 "
                    "contributions, 12 binary topic labels",
            "licence": "posts CC BY 4.0, annotations CC BY-SA 4.0 (cite: CIMT, LREC 2022)",
            "file": f"../shared/data/participation/{OTTENSEN_FILE}",
        },
        "metrics": {k: v for k, v in cv.items() if not k.startswith("_")},
        "review_threshold": review_threshold(conf, correct),
        "intended_use": "a first sorting of contributions to mobility proceedings in German "
                        "by topic, for moderators who check it (needs_review)",
        "limits": "trained on one Hamburg proceeding (483 texts); labels with few examples "
                  "(long-distance public transport, new services, scooters) are unreliable; "
                  "German only",
    })
    return _write(fitted, OTTENSEN_MODEL, out_dir, card)


def train_cycling(data: Path | None, out_dir: Path, evaluation: dict | None = None) -> Any:
    corpus = load_cycling(data)
    ev = evaluation or evaluate_cycling(corpus)
    fitted = fit_topics(corpus.texts, corpus.targets, corpus.labels, multilabel=False)
    card = _common_card(fitted, corpus)
    card.update({
        "title": "Main categories of cycling dialogue contributions (Bonn, Moers)",
        "training_data": {
            "name": "CIMT cycling dialogues Bonn and Moers 2017: 2,773 contributions, "
                    "8 main categories (main_category_level1)",
            "licence": "CC BY / CC BY-SA (cite: CIMT, EGOV 2022)",
            "file": f"../shared/data/participation/{CYCLING_FILE}",
        },
        "metrics": {k: v for k, v in ev.items() if not k.startswith("_")},
        "review_threshold": ev.get("_review_threshold", 0.5),
        "intended_use": "sorting contributions of cycling participations in German into the "
                        "8 main categories, checked by moderators",
        "limits": "trained on two 2017 cycling dialogues; other cities' wording and other "
                  "topics (not cycling) are out of scope; German only",
    })
    return _write(fitted, CYCLING_MODEL, out_dir, card)


def _register() -> None:
    from cut_processes.ml.training import register_evaluator, register_trainer

    register_trainer(OTTENSEN_MODEL)(lambda data, out: train_ottensen(data, out))
    register_trainer(CYCLING_MODEL)(lambda data, out: train_cycling(data, out))
    register_evaluator("contribution-topics")(lambda data: evaluate_all(data))


# --- evaluation --------------------------------------------------------------------------------

def evaluate_ottensen(corpus: Corpus | None = None) -> dict[str, Any]:
    """Fixed 5-fold CV on Ottensen, model and baseline in the same folds."""
    corpus = corpus or load_ottensen()
    cv = cross_validate(corpus.texts, corpus.targets, corpus.labels, multilabel=True,
                        baseline=True)
    cv["per_label_f1"] = _per_label(corpus.targets, cv["_predictions"], corpus.labels)
    cv["bar"] = {"micro_f1_gain_required": 0.03,
                 "micro_f1_gain": round(cv["micro_f1"] - cv["baseline"]["micro_f1"], 4)}
    cv["bar"]["holds"] = cv["bar"]["micro_f1_gain"] >= 0.03
    return cv


def _per_label(truth: np.ndarray, pred: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    from sklearn.metrics import f1_score

    return {lab: round(float(f1_score(truth[:, j], pred[:, j], zero_division=0)), 4)
            for j, lab in enumerate(labels)}


def evaluate_cycling(corpus: Corpus | None = None, curve: Sequence[int] = (0, 25, 50, 100),
                     repeats: int = 5, added_weight: float = 5.0) -> dict[str, Any]:
    """Across proceedings (train Bonn, test Moers) with the baseline, and the moderator
    curve: Bonn + k labelled Moers contributions (k in ``curve``, ``repeats`` random draws
    each), tested on the other Moers contributions."""
    corpus = corpus or load_cycling()
    groups = np.array(corpus.groups)
    bonn, moers = np.flatnonzero(groups == "Bonn"), np.flatnonzero(groups == "Moers")
    texts = corpus.texts
    T = corpus.targets

    def pick(idx):
        return [texts[i] for i in idx]

    fitted = fit_topics(pick(bonn), T[bonn], corpus.labels, multilabel=False)
    probs = fitted.probabilities(pick(moers))
    pred = assign(probs, fitted.thresholds, False)
    base = baseline_predict(pick(bonn), T[bonn], pick(moers), False)
    result: dict[str, Any] = {
        "bonn_to_moers": {"train": len(bonn), "test": len(moers), **f1_scores(T[moers], pred),
                          "accuracy": round(float((pred == T[moers]).all(axis=1).mean()), 4),
                          "per_label_f1": _per_label(T[moers], pred, corpus.labels),
                          "baseline": {**f1_scores(T[moers], base), "accuracy": round(
                              float((base == T[moers]).all(axis=1).mean()), 4)}},
    }
    gain = result["bonn_to_moers"]["macro_f1"] - result["bonn_to_moers"]["baseline"]["macro_f1"]
    result["bonn_to_moers"]["bar"] = {"macro_f1_gain_required": 0.05,
                                      "macro_f1_gain": round(gain, 4), "holds": gain >= 0.05}
    conf = probs.max(axis=1)
    correct = (pred == T[moers]).all(axis=1).astype(float)
    result["_review_threshold"] = review_threshold(conf, correct)
    # The moderator workflow: a Bonn model plus k labelled Moers contributions. Per random
    # draw the test set is fixed (the Moers contributions after the first max(curve)), so
    # every point of the curve is measured on the same texts.
    rng = np.random.default_rng(SEED)
    draws = [rng.permutation(moers) for _ in range(repeats)]
    held = max(curve) if curve else 0
    points = []
    for k in curve:
        scores, base_scores = [], []
        for order in draws:
            added, test = order[:k], order[held:]
            train = np.concatenate([bonn, added])
            # Labels of the proceeding at hand weigh more than the other city's.
            weight = np.concatenate([np.ones(len(bonn)), np.full(len(added), added_weight)])
            model = fit_topics(pick(train), T[train], corpus.labels, multilabel=False,
                               sample_weight=weight)
            p = assign(model.probabilities(pick(test)), model.thresholds, False)
            scores.append(f1_scores(T[test], p)["macro_f1"])
            b = baseline_predict(pick(train), T[train], pick(test), False)
            base_scores.append(f1_scores(T[test], b)["macro_f1"])
        points.append({"moers_labels": k, "macro_f1": round(float(np.mean(scores)), 4),
                       "macro_f1_std": round(float(np.std(scores)), 4),
                       "baseline_macro_f1": round(float(np.mean(base_scores)), 4)})
    result["moderator_curve"] = {
        "repeats": repeats, "test": f"per draw the same {len(moers) - held} Moers "
        f"contributions (not among the first {held} of the draw)",
        "added_label_weight": added_weight, "points": points}
    by_k = {p["moers_labels"]: p["macro_f1"] for p in points}
    if 0 in by_k and 50 in by_k:
        result["moderator_curve"]["bar"] = {"improvement_at_50": round(by_k[50] - by_k[0], 4),
                                            "holds": by_k[50] > by_k[0]}
    return result


def evaluate_all(data: Path | None = None, *, discover: bool = True) -> dict[str, Any]:
    """Every quality bar of ``contribution-topics``, each with its baseline in the same run."""
    ott = load_ottensen(data)
    cyc = load_cycling(data)
    result: dict[str, Any] = {
        "ottensen_cv": evaluate_ottensen(ott),
        "cycling": evaluate_cycling(cyc),
    }
    if discover:
        from cut_processes.analysis.topics import evaluate_discovery

        result["discover_ottensen"] = evaluate_discovery(ott.texts, ott.targets, ott.labels,
                                                         topic_count=12)
    return _public(result)


def _public(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items() if not str(k).startswith("_")}
    if isinstance(value, list):
        return [_public(v) for v in value]
    return value


def main_report(metrics: dict[str, Any]) -> str:
    """Human-readable lines of :func:`evaluate_all` (the CLI prints them after the JSON)."""
    return json.dumps(metrics, indent=2, ensure_ascii=False)


_register()
