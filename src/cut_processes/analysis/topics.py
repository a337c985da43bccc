"""Topics of citizen contributions: discovery (unsupervised) and per-topic summaries.

Plain results in, plain results out (no HTTP, no pygeoapi). Classification with trained
models lives in :mod:`cut_processes.ml.topics`; this module discovers topics and describes
topics (keywords, size, representative contributions, the point cluster of located ones).

Discovery: TF-IDF over the preprocessed texts (stems and compound parts, German stopwords
and the caller's ``stopwords`` removed; terms in at least 2 and at most half of the
contributions) factorised with NMF (``nndsvda`` initialisation, fixed seed); each
contribution gets the topic of its largest weight, its confidence is that weight's share of
the row. Keywords are the topic's heaviest terms, shown as their most frequent surface form
(``radwege`` rather than the stem ``radweg``).
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cut_processes.analysis.german import Lexicon, preprocess, stem, words

SEED = 42
MAX_TOPICS = 30


@dataclass
class Discovery:
    """Discovered topics: per contribution a topic index and confidence; per topic keywords."""

    assignment: np.ndarray  # contributions -> topic index (-1: no terms at all)
    confidence: np.ndarray  # 0..1
    weights: np.ndarray  # contributions x topics (NMF W, row-normalised)
    keywords: list[list[str]]
    keyword_weights: list[list[float]]
    explanations: list[list[dict[str, Any]]]

    @property
    def topic_count(self) -> int:
        return len(self.keywords)


def automatic_topic_count(n_documents: int) -> int:
    """Topics when the caller names none: about one per 25 contributions, 2 to 12."""
    return int(min(12, max(2, round(n_documents / 25))))


def surface_forms(texts: Sequence[str]) -> dict[str, str]:
    """Stem -> its most frequent surface word in ``texts`` (for readable keywords)."""
    counts: dict[str, Counter[str]] = {}
    for text in texts:
        for word in words(text):
            counts.setdefault(stem(word), Counter())[word] += 1
    return {s: c.most_common(1)[0][0] for s, c in counts.items()}


def readable(term: str, forms: dict[str, str]) -> str:
    return " ".join(forms.get(part, part) for part in term.split())


def discover(texts: Sequence[str], topic_count: int | None = None,
             stopwords: Sequence[str] = (), seed: int = SEED) -> Discovery:
    """Discover ``topic_count`` topics (automatic when None) in redacted ``texts``."""
    from sklearn.decomposition import NMF
    from sklearn.feature_extraction.text import TfidfVectorizer

    n = len(texts)
    extra = {w.lower() for w in stopwords} | {stem(w.lower()) for w in stopwords}
    lexicon = Lexicon.learn(texts)
    docs = [" ".join(t for t in preprocess(text, lexicon).split() if t not in extra)
            for text in texts]
    k = topic_count or automatic_topic_count(n)
    min_df = 2 if n >= 20 else 1
    vect = TfidfVectorizer(token_pattern=r"\S+", lowercase=False, sublinear_tf=True,
                           min_df=min_df, max_df=0.5 if n >= 20 else 1.0, dtype=np.float64)
    try:
        X = vect.fit_transform(docs)
    except ValueError:  # no term at all (empty or stopword-only texts)
        X = None
    if X is None or X.shape[1] == 0:
        return _empty_discovery(n)
    k = max(1, min(k, X.shape[0], X.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        nmf = NMF(n_components=k, init="nndsvda", random_state=seed, max_iter=400)
        W = nmf.fit_transform(X)
    H = nmf.components_
    terms = vect.get_feature_names_out()
    forms = surface_forms(texts)
    totals = W.sum(axis=1)
    has = totals > 0
    assignment = np.where(has, W.argmax(axis=1), -1)
    confidence = np.where(has, W.max(axis=1) / np.where(has, totals, 1.0), 0.0)
    keywords, keyword_weights = [], []
    for topic in range(k):
        order = np.argsort(-H[topic], kind="stable")[:10]
        keywords.append([readable(terms[i], forms) for i in order if H[topic, i] > 0])
        keyword_weights.append([round(float(H[topic, i]), 4) for i in order if H[topic, i] > 0])
    explanations = []
    for row in range(n):
        topic = assignment[row]
        if topic < 0:
            explanations.append([])
            continue
        x = X.getrow(row)
        contrib = x.data * H[topic, x.indices]
        order = np.argsort(-contrib, kind="stable")[:5]
        explanations.append([{"term": readable(terms[x.indices[i]], forms),
                              "weight": round(float(contrib[i]), 4)}
                             for i in order if contrib[i] > 0])
    norm = W / np.where(has, totals, 1.0)[:, None]
    return Discovery(assignment, confidence, norm, keywords, keyword_weights, explanations)


def _empty_discovery(n: int) -> Discovery:
    return Discovery(np.full(n, -1), np.zeros(n), np.zeros((n, 0)), [], [], [[] for _ in
                                                                          range(n)])


def topic_name(keywords: Sequence[str]) -> str:
    """A generated name: the three top keywords (``radwege / parken / ampel``)."""
    return " / ".join(keywords[:3]) if keywords else "(no terms)"


def point_cluster(points: Sequence[Any]) -> dict[str, Any] | None:
    """Centroid and bbox of the located members (shapely geometries in one CRS; ``None``s
    and empty geometries are skipped); None when no member is located."""
    import shapely

    geoms = np.array([g for g in points if g is not None and not g.is_empty], dtype=object)
    if geoms.size == 0:
        return None
    centroids = shapely.centroid(geoms)
    xy = shapely.get_coordinates(centroids)
    bounds = shapely.bounds(geoms)
    return {
        "located": len(geoms),
        "centroid": [float(xy[:, 0].mean()), float(xy[:, 1].mean())],
        "bbox": [float(bounds[:, 0].min()), float(bounds[:, 1].min()),
                 float(bounds[:, 2].max()), float(bounds[:, 3].max())],
    }


def representatives(members: np.ndarray, strength: np.ndarray, count: int = 3) -> np.ndarray:
    """Indices of the ``count`` members with the strongest membership (ties: input order)."""
    if members.size == 0:
        return members
    order = np.argsort(-strength[members], kind="stable")[:count]
    return members[order]


# --- evaluation ------------------------------------------------------------------------------

def reference_labels(targets: np.ndarray) -> np.ndarray:
    """One annotated label per contribution for clustering metrics: the rarest label it
    carries (the most specific); -1 without labels."""
    frequency = targets.sum(axis=0)
    ref = np.full(len(targets), -1)
    for row in range(len(targets)):
        carried = np.flatnonzero(targets[row])
        if carried.size:
            ref[row] = carried[np.argmin(frequency[carried])]
    return ref


def evaluate_discovery(texts: Sequence[str], targets: np.ndarray, labels: Sequence[str],
                       topic_count: int = 12, seed: int = SEED) -> dict[str, Any]:
    """How well discovered topics match annotated ones (NMI, ARI, purity) against a plain
    k-means on TF-IDF of the raw texts, with the same number of clusters."""
    import time

    from sklearn.cluster import KMeans
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    ref = reference_labels(np.asarray(targets))
    keep = ref >= 0
    started = time.perf_counter()
    found = discover(texts, topic_count, seed=seed)
    seconds = time.perf_counter() - started
    X = TfidfVectorizer().fit_transform(texts)
    kmeans = KMeans(n_clusters=topic_count, n_init=10, random_state=seed).fit_predict(X)

    def scores(pred: np.ndarray) -> dict[str, float]:
        p, r = pred[keep], ref[keep]
        purity = sum(Counter(r[p == c]).most_common(1)[0][1] for c in np.unique(p)) / len(r)
        return {"nmi": round(float(normalized_mutual_info_score(r, p)), 4),
                "ari": round(float(adjusted_rand_score(r, p)), 4),
                "purity": round(float(purity), 4)}

    ours = scores(found.assignment)
    base = scores(kmeans)
    return {
        "documents": int(keep.sum()),
        "topics": topic_count,
        "reference": "per contribution its rarest annotated label (contributions without "
                     "labels left out)",
        "method": "NMF on TF-IDF of preprocessed text (stems, compound parts)",
        **ours,
        "seconds": round(seconds, 2),
        "baseline": {"method": "k-means (k=12, n_init=10) on TF-IDF of the raw text", **base},
        "nmi_gain": round(ours["nmi"] - base["nmi"], 4),
        "topics_found": [topic_name(k) for k in found.keywords],
    }
