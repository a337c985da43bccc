"""contribution-topics benchmarks (one core).

1. Classification throughput of the shipped ONNX model ``dipas-mobility-topics``
   (preprocessing in Python + the ONNX graph) against the same scikit-learn pipeline's
   ``predict`` (the model refitted here with the same data and seed, on the same
   preprocessed texts), on 3,000 contributions (the Ottensen texts, repeated). Goal:
   >= 2,000 contributions/s.
2. ``discover`` (12 topics) on 3,000 contributions. Goal: < 10 s.

Texts and the peer's training data come from ``../shared/data/participation``.
Prints ``name value unit`` lines; ratios as ``..._ratio_vs_<peer> value x``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("CUT_ONNX_THREADS", "1")

import statistics
import sys
import time

N = 3_000
RUNS = 5


def texts() -> list[str]:
    from cut_processes.ml.topics import load_ottensen

    base = load_ottensen().texts
    return [base[i % len(base)] for i in range(N)]


def median_seconds(fn) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def main() -> int:
    from cut_processes.analysis.german import preprocess, stem
    from cut_processes.analysis.topics import discover
    from cut_processes.ml import topics as ml_topics

    try:
        docs = texts()
    except FileNotFoundError as err:
        print(f"contribution_topics skipped: {err}")
        return 0
    model, _ = ml_topics.shipped_model(ml_topics.OTTENSEN_MODEL)
    corpus = ml_topics.load_ottensen()
    fitted = ml_topics.fit_topics(corpus.texts, corpus.targets, corpus.labels, multilabel=True)

    def ours():
        stem.cache_clear()  # no warm stem cache between runs
        model.lexicon._cache.clear()
        ml_topics.assign(model.probabilities(model.preprocess(docs)), model.thresholds, True)

    def peer():
        stem.cache_clear()
        fitted.lexicon._cache.clear()
        X = fitted.vectorizer.transform([preprocess(t, fitted.lexicon) for t in docs])
        ml_topics.assign(ml_topics._activate(X @ fitted.coef + fitted.intercept, True),
                         fitted.thresholds, True)

    ours_s, peer_s = median_seconds(ours), median_seconds(peer)
    print(f"classify_onnx {N / ours_s:.0f} contributions/s")
    print(f"classify_sklearn {N / peer_s:.0f} contributions/s")
    print(f"classify_onnx_ratio_vs_sklearn {peer_s / ours_s:.2f} x")
    prepped = model.preprocess(docs)
    graph_s = median_seconds(lambda: model.probabilities(prepped))
    print(f"classify_onnx_graph_only {N / graph_s:.0f} contributions/s")
    discover_s = median_seconds(lambda: discover(docs, 12))
    print(f"discover_3000 {discover_s:.2f} s")
    print(f"discover_goal_10s {'met' if discover_s < 10 else 'missed'} -")
    return 0 if N / ours_s >= 2000 and discover_s < 10 else 1


if __name__ == "__main__":
    sys.exit(main())
