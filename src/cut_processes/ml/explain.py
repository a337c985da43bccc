"""Per-feature contributions of ONNX models, computed in numpy from the graph's attributes.

No scikit-learn or pickle at inference: the explainer reads the operator attributes of the
ONNX model it explains.

* Tree ensembles (``TreeEnsembleRegressor``/``TreeEnsembleClassifier``, ai.onnx.ml): Saabas
  contributions. Every node gets the expected output of the leaves below it (weighted by the
  ``nodes_hitrates``, which :func:`cut_processes.ml.export.to_onnx` fills with the training
  sample counts); walking a row from the root to its leaf, each split adds the change of the
  expected output to the feature it tested. Per row and output column,
  ``bias + contributions.sum() == score`` exactly (up to float rounding), where ``bias`` is
  the sum of the root values (plus ``base_values``) and ``score`` the ensemble's output before
  its ``post_transform`` (probabilities for forests, log-odds for boosting).
* Linear models (``LinearRegressor``/``LinearClassifier``, optionally after a ``Scaler``):
  coefficient x (scaled) value; the bias is the intercept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

TREE_OPS = ("TreeEnsembleRegressor", "TreeEnsembleClassifier")
LINEAR_OPS = ("LinearRegressor", "LinearClassifier")
#: Operators allowed between the model's input and the explained operator.
_PASS_THROUGH = ("Identity", "Cast", "Scaler")
#: nodes_modes of the tree operators, coded for vectorised comparison.
LOGGER = logging.getLogger(__name__)

_MODES = {"BRANCH_LEQ": 0, "BRANCH_LT": 1, "BRANCH_GTE": 2, "BRANCH_GT": 3,
          "BRANCH_EQ": 4, "BRANCH_NEQ": 5, "LEAF": -1}  # fmt: skip


@dataclass(frozen=True)
class Contributions:
    """Contributions of the features to each output column, in the model's score space.

    ``bias``: (rows, outputs); ``values``: (rows, features, outputs); ``outputs`` are the
    class labels of a classifier or the targets of a regressor. ``bias + values.sum(1)`` is
    the score before the model's ``post_transform`` (``space`` names it).
    """

    bias: np.ndarray
    values: np.ndarray
    space: str

    @property
    def score(self) -> np.ndarray:
        return self.bias + self.values.sum(axis=1)


class UnsupportedModelError(ValueError):
    """The ONNX graph has no operator the explainer understands."""


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper, numpy_helper

    attrs = {}
    for attr in node.attribute:
        value = helper.get_attribute_value(attr)
        if hasattr(value, "dims"):  # TensorProto (e.g. nodes_values_as_tensor)
            value = numpy_helper.to_array(value)
        if isinstance(value, bytes):
            value = value.decode("utf-8")
        elif isinstance(value, list) and value and isinstance(value[0], bytes):
            value = [v.decode("utf-8") for v in value]
        attrs[attr.name] = value
    return attrs


def _score_space(op_type: str, post_transform: str) -> str:
    if op_type.endswith("Regressor"):
        return "prediction"
    return {"NONE": "probability", "SOFTMAX": "log-odds (before softmax)"}.get(
        post_transform, f"score before {post_transform}"
    )


class TreeExplainer:
    """Saabas contributions of one ONNX tree ensemble (all trees in flat node tables)."""

    def __init__(self, op_type: str, attrs: dict[str, Any], n_features: int):
        self.n_features = n_features
        self._node_attrs = {k: v for k, v in attrs.items() if k.startswith("nodes_")}
        self._leaf_session: Any = None
        classifier = op_type == "TreeEnsembleClassifier"
        post = attrs.get("post_transform", "NONE")
        self.space = _score_space(op_type, post)
        tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
        node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
        values = attrs.get("nodes_values", attrs.get("nodes_values_as_tensor"))
        n = tree_ids.size
        # Global index of (tree, node id).
        key = {(int(t), int(i)): k for k, (t, i) in enumerate(zip(tree_ids, node_ids, strict=True))}
        self.feature = np.asarray(attrs["nodes_featureids"], dtype=np.int64)
        self.threshold = np.asarray(values, dtype=np.float32)
        self.mode = np.array([_MODES[m] for m in attrs["nodes_modes"]], dtype=np.int8)
        self.is_leaf = self.mode < 0
        true_ids = np.asarray(attrs["nodes_truenodeids"], dtype=np.int64)
        false_ids = np.asarray(attrs["nodes_falsenodeids"], dtype=np.int64)
        self.true_child = np.array(
            [key.get((int(t), int(c)), -1) if not leaf else k
             for k, (t, c, leaf) in enumerate(zip(tree_ids, true_ids, self.is_leaf, strict=True))]
        )  # fmt: skip
        self.false_child = np.array(
            [key.get((int(t), int(c)), -1) if not leaf else k
             for k, (t, c, leaf) in enumerate(zip(tree_ids, false_ids, self.is_leaf, strict=True))]
        )  # fmt: skip
        missing = attrs.get("nodes_missing_value_tracks_true") or [0] * n
        self.missing_true = np.asarray(missing, dtype=bool)
        branches = self.mode[self.mode >= 0]
        self._all_leq = bool(branches.size == 0 or (branches == _MODES["BRANCH_LEQ"]).all())
        self._any_missing_true = bool(self.missing_true.any())
        hitrates = attrs.get("nodes_hitrates") or [1.0] * n
        self.hitrate = np.asarray(hitrates, dtype=np.float64)

        prefix = "class" if classifier else "target"
        w_trees = np.asarray(attrs.get(f"{prefix}_treeids", []), dtype=np.int64)
        w_nodes = np.asarray(attrs.get(f"{prefix}_nodeids", []), dtype=np.int64)
        w_ids = np.asarray(attrs.get(f"{prefix}_ids", []), dtype=np.int64)
        weights = np.asarray(attrs.get(f"{prefix}_weights", []), dtype=np.float64)
        if classifier:
            labels = attrs.get("classlabels_int64s") or attrs.get("classlabels_strings")
            self.outputs = list(labels)
            n_out = len(self.outputs)
            # Binary models may store one score column (class 1); see _binary_single.
            self.binary_single = n_out == 2 and w_ids.size > 0 and np.unique(w_ids).size == 1
        else:
            n_out = int(attrs.get("n_targets", 1))
            self.outputs = list(range(n_out))
            self.binary_single = False
        leaf_value = np.zeros((n, n_out), dtype=np.float64)
        rows = np.array(
            [key[(int(t), int(i))] for t, i in zip(w_trees, w_nodes, strict=True)], dtype=np.int64
        )
        if self.binary_single:
            # onnxruntime's binary convention: the single stored score is the second class's;
            # the first class gets 1 - score (post_transform NONE) or -score (a logit).
            w_ids = np.ones_like(w_ids)
        if rows.size:
            np.add.at(leaf_value, (rows, w_ids), weights)
        if self.binary_single:
            leaf_value[:, 0] = -leaf_value[:, 1]
        # A tree's root is its node that no split points to.
        inner = ~self.is_leaf
        pointed = np.zeros(n, dtype=bool)
        pointed[self.true_child[inner]] = True
        pointed[self.false_child[inner]] = True
        tree_order = np.unique(tree_ids)
        self.roots = np.array(
            [np.flatnonzero((tree_ids == t) & ~pointed)[0] for t in tree_order], dtype=np.int64
        )
        n_trees = len(self.roots)
        scale = 1.0
        if attrs.get("aggregate_function", "SUM") == "AVERAGE" and n_trees:
            scale = 1.0 / n_trees
        elif attrs.get("aggregate_function", "SUM") not in ("SUM", "AVERAGE"):
            raise UnsupportedModelError(
                f"aggregate_function {attrs['aggregate_function']} has no additive explanation"
            )
        self.node_value = self._expected_values(leaf_value * scale)
        base = np.asarray(attrs.get("base_values") or np.zeros(n_out), dtype=np.float64)
        if self.binary_single:
            positive = self.node_value[self.roots, 1].sum() + base[-1]
            first = (1.0 if post == "NONE" else 0.0) - positive
            self.bias = np.array([first, positive])
        else:
            self.bias = self.node_value[self.roots].sum(axis=0) + base

    def _expected_values(self, leaf_value: np.ndarray) -> np.ndarray:
        """Hit-rate weighted mean of the leaf values below every node (children first)."""
        value = leaf_value.copy()
        # Depth of every node (breadth-first from the roots), then the levels bottom-up.
        depth = np.zeros(len(value), dtype=np.int64)
        frontier = self.roots[~self.is_leaf[self.roots]]
        level = 0
        while frontier.size:
            level += 1
            children = np.concatenate([self.true_child[frontier], self.false_child[frontier]])
            depth[children] = level
            frontier = children[~self.is_leaf[children]]
        for d in range(int(depth.max(initial=0)), -1, -1):
            nodes = np.flatnonzero((depth == d) & ~self.is_leaf)
            if nodes.size == 0:
                continue
            t, f = self.true_child[nodes], self.false_child[nodes]
            wt, wf = self.hitrate[t], self.hitrate[f]
            total = wt + wf
            equal = total <= 0
            wt = np.where(equal, 0.5, wt / np.where(equal, 1, total))
            value[nodes] = wt[:, None] * value[t] + (1 - wt)[:, None] * value[f]
        return value

    def _goes_true(self, x: np.ndarray, nodes: np.ndarray) -> np.ndarray:
        thr = self.threshold[nodes]
        if self._all_leq:  # scikit-learn trees: one comparison, no mode dispatch
            result = x <= thr
            if self._any_missing_true:
                result |= np.isnan(x) & self.missing_true[nodes]
            return result
        mode = self.mode[nodes]
        result = np.select(
            [mode == 0, mode == 1, mode == 2, mode == 3, mode == 4],
            [x <= thr, x < thr, x >= thr, x > thr, x == thr],
            default=x != thr,
        )
        return result | (np.isnan(x) & self.missing_true[nodes])

    def contributions(self, X: np.ndarray) -> Contributions:
        X = np.ascontiguousarray(X, dtype=np.float32)
        n_rows, n_trees = X.shape[0], self.roots.size
        n_out = self.node_value.shape[1]
        values = np.zeros((n_rows, self.n_features, n_out), dtype=np.float64)
        current = np.tile(self.roots, (n_rows, 1)).ravel()
        row_of = np.repeat(np.arange(n_rows), n_trees)
        active = np.flatnonzero(~self.is_leaf[current])
        while active.size:
            nodes = current[active]
            rows = row_of[active]
            feats = self.feature[nodes]
            go = self._goes_true(X[rows, feats], nodes)
            child = np.where(go, self.true_child[nodes], self.false_child[nodes])
            np.add.at(values, (rows, feats), self.node_value[child] - self.node_value[nodes])
            current[active] = child
            active = active[~self.is_leaf[child]]
        bias = np.broadcast_to(self.bias, (n_rows, n_out)).copy()
        return Contributions(bias, values, self.space)

    def column_contributions(self, X: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Contributions to one output column per row: (rows, features).

        The same numbers as ``contributions(X).values[row, :, columns[row]]``, for the reported
        class only: what a process needs for 100,000 buildings. onnxruntime finds each tree's
        leaf (a derived ONNX model with one output per tree: the number of the leaf reached); a
        precomputed table holds every leaf's path contributions per output column, so a row's
        explanation is a sum of table rows, added tree by tree in float64 (a sparse matrix of
        ones times the table). Where that model cannot be built, numpy walks the trees (same
        numbers, slower).
        """
        X = np.ascontiguousarray(X, dtype=np.float32)
        columns = np.asarray(columns, dtype=np.int64)
        out = np.zeros((X.shape[0], self.n_features), dtype=np.float64)
        fast = self._leaf_tables()
        if fast is None:
            chunk = max(1, 1_000_000 // max(1, self.roots.size))
            for start in range(0, X.shape[0], chunk):
                stop = min(start + chunk, X.shape[0])
                out[start:stop] = self._column_chunk(X[start:stop], columns[start:stop])
            return out
        from scipy.sparse import csr_matrix  # scipy comes with scikit-learn

        session, table = fast
        n_trees, n_out = self.roots.size, self.node_value.shape[1]
        step = max(1, 2_000_000 // max(1, n_trees))
        ones = np.ones(min(step, X.shape[0]) * n_trees)
        for start in range(0, X.shape[0], step):
            stop = min(start + step, X.shape[0])
            n = stop - start
            # One output per tree (in the order of self.roots): the row's leaf, numbered
            # among all leaves (< 2**24: exact in float32); its table row for the column.
            index = np.concatenate(session.run(None, {"X": X[start:stop]}), axis=1)
            index = index.astype(np.int32)
            index *= n_out
            index += columns[start:stop, None].astype(np.int32)
            # A sparse matrix of ones times the table adds, per row, the picked table rows
            # one tree after the other in float64.
            picks = csr_matrix(
                (ones[: n * n_trees], index.ravel(), np.arange(0, n * n_trees + 1, n_trees)),
                shape=(n, table.shape[0]),
            )
            out[start:stop] = picks @ table
        return out

    def _leaf_tables(self) -> tuple[Any, np.ndarray] | None:
        """(leaf-number session, per-leaf path contributions), built once."""
        if self._leaf_session is None:
            try:
                self._leaf_session = self._build_leaf_tables()
            except Exception as err:  # any onnx/onnxruntime refusal: fall back to numpy
                LOGGER.info("leaf-index explanations unavailable (%s); using numpy", err)
                self._leaf_session = False
        return self._leaf_session or None

    def _build_leaf_tables(self) -> tuple[Any, np.ndarray]:
        """The leaf-number model and the table of path contributions.

        The model has one single-tree ``TreeEnsembleRegressor`` per tree, whose output is the
        number of the leaf reached among all leaves: in onnxruntime (1.32, one thread) that
        takes about 30 % less time than one operator with a target per tree. The table has a
        row per leaf and output column (row ``leaf * outputs + column``) and a column per
        feature: float32 sums along the path, as float64 for the float64 sum.
        """
        import onnxruntime as ort
        from onnx import TensorProto, helper

        attrs = self._node_attrs
        tree_ids = np.asarray(attrs["nodes_treeids"], dtype=np.int64)
        leaves = np.flatnonzero(self.is_leaf)
        n_out = self.node_value.shape[1]
        if leaves.size >= 2**24 or leaves.size * n_out >= 2**31:  # float32, int32 indices
            raise ValueError("too many leaves")
        leaf_number = np.zeros(self.is_leaf.size, dtype=np.int64)
        leaf_number[leaves] = np.arange(leaves.size)
        node_ids = np.asarray(attrs["nodes_nodeids"], dtype=np.int64)
        node_columns = {k: np.asarray(attrs[k], dtype=np.int64) for k in
                        ("nodes_nodeids", "nodes_featureids", "nodes_truenodeids",
                         "nodes_falsenodeids", "nodes_missing_value_tracks_true")
                        if k in attrs}  # fmt: skip
        modes = np.asarray(attrs["nodes_modes"], dtype=object)
        nodes, outputs = [], []
        for j, tree in enumerate(np.unique(tree_ids)):  # the order of self.roots
            sel = np.flatnonzero(tree_ids == tree)
            tree_leaves = sel[self.is_leaf[sel]]
            node = helper.make_node(
                "TreeEnsembleRegressor", ["X"], [f"leaf_{j}"], domain="ai.onnx.ml",
                nodes_treeids=[int(tree)] * sel.size,
                nodes_values=self.threshold[sel].tolist(),
                nodes_modes=modes[sel].tolist(),
                **{k: v[sel].tolist() for k, v in node_columns.items()},
                target_treeids=[int(tree)] * tree_leaves.size,
                target_nodeids=node_ids[tree_leaves].tolist(),
                target_ids=[0] * tree_leaves.size,
                target_weights=leaf_number[tree_leaves].astype(np.float64).tolist(),
                n_targets=1, aggregate_function="SUM", post_transform="NONE",
            )  # fmt: skip
            nodes.append(node)
            outputs.append(helper.make_tensor_value_info(f"leaf_{j}", TensorProto.FLOAT, [None, 1]))
        graph = helper.make_graph(
            nodes, "leaf_rows",
            [helper.make_tensor_value_info("X", TensorProto.FLOAT, [None, self.n_features])],
            outputs,
        )  # fmt: skip
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
        )
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        # Path contributions of every leaf: walk from all leaves up to their roots at once.
        parent = np.full(self.is_leaf.size, -1, dtype=np.int64)
        inner = np.flatnonzero(~self.is_leaf)
        parent[self.true_child[inner]] = inner
        parent[self.false_child[inner]] = inner
        table = np.zeros((leaves.size, n_out, self.n_features), dtype=np.float32)
        rows = np.arange(leaves.size)
        current = leaves.copy()
        while True:
            up = parent[current]
            keep = up >= 0
            if not keep.any():
                break
            rows, current, up = rows[keep], current[keep], up[keep]
            delta = (self.node_value[current] - self.node_value[up]).astype(np.float32)
            np.add.at(table, (rows, slice(None), self.feature[up]), delta)
            current = up
        # Rows leaf * n_out + column, in float64: the sums stay as the float64 sum of the
        # float32 table entries they always were.
        return session, table.reshape(-1, self.n_features).astype(np.float64)

    def _column_chunk(self, X: np.ndarray, columns: np.ndarray) -> np.ndarray:
        n_rows, n_trees = X.shape[0], self.roots.size
        flat = np.zeros(n_rows * self.n_features, dtype=np.float64)
        current = np.tile(self.roots, n_rows)
        row_of = np.repeat(np.arange(n_rows), n_trees)
        column_of = np.repeat(columns, n_trees)
        active = np.flatnonzero(~self.is_leaf[current])
        while active.size:
            nodes = current[active]
            rows = row_of[active]
            cols = column_of[active]
            feats = self.feature[nodes]
            go = self._goes_true(X[rows, feats], nodes)
            child = np.where(go, self.true_child[nodes], self.false_child[nodes])
            delta = self.node_value[child, cols] - self.node_value[nodes, cols]
            flat += np.bincount(rows * self.n_features + feats, weights=delta, minlength=flat.size)
            current[active] = child
            active = active[~self.is_leaf[child]]
        return flat.reshape(n_rows, self.n_features)


class LinearExplainer:
    """coefficient x value of an ONNX linear model (after an optional Scaler)."""

    def __init__(self, op_type: str, attrs: dict[str, Any], n_features: int,
                 scaler: tuple[np.ndarray, np.ndarray] | None):  # fmt: skip
        coef = np.asarray(attrs["coefficients"], dtype=np.float64)
        self.coef = coef.reshape(-1, n_features)  # outputs x features
        intercepts = attrs.get("intercepts") or np.zeros(self.coef.shape[0])
        self.intercept = np.asarray(intercepts, dtype=np.float64)
        if op_type == "LinearClassifier":
            labels = attrs.get("classlabels_ints") or attrs.get("classlabels_strings")
            self.outputs = list(labels)
            if len(self.outputs) == 2 and self.coef.shape[0] == 1:
                self.coef = np.vstack([-self.coef, self.coef])
                self.intercept = np.array([-self.intercept[0], self.intercept[0]])
        else:
            self.outputs = list(range(self.coef.shape[0]))
        self.scaler = scaler
        self.space = _score_space(op_type, attrs.get("post_transform", "NONE"))

    def contributions(self, X: np.ndarray) -> Contributions:
        x = np.asarray(X, dtype=np.float64)
        if self.scaler is not None:
            offset, scale = self.scaler
            x = (x - offset) * scale
        values = x[:, :, None] * self.coef.T[None, :, :]
        bias = np.broadcast_to(self.intercept, (x.shape[0], self.coef.shape[0])).copy()
        return Contributions(bias, values, self.space)

    def column_contributions(self, X: np.ndarray, columns: np.ndarray) -> np.ndarray:
        """Contributions to one output column per row: (rows, features)."""
        values = self.contributions(X).values
        return values[np.arange(values.shape[0]), :, np.asarray(columns, dtype=np.int64)]


def explainer_for(model: Any) -> TreeExplainer | LinearExplainer:
    """The explainer of an ONNX ModelProto whose input feeds (through Identity, Cast or
    Scaler operators only) one tree-ensemble or linear operator.

    :raises UnsupportedModelError: for any other graph.
    """
    graph = model.graph
    if len(graph.input) != 1:
        raise UnsupportedModelError(f"expected one input, the graph has {len(graph.input)}")
    dims = graph.input[0].type.tensor_type.shape.dim
    n_features = dims[1].dim_value if len(dims) == 2 else 0
    if n_features <= 0:
        raise UnsupportedModelError("the input's feature dimension is not fixed")
    current = graph.input[0].name
    scaler = None
    consumers = {name: n for n in graph.node for name in n.input}
    while current in consumers:
        node = consumers[current]
        attrs = _attributes(node)
        if node.op_type in TREE_OPS:
            if scaler is not None:
                raise UnsupportedModelError("a Scaler before a tree ensemble is not supported")
            return TreeExplainer(node.op_type, attrs, n_features)
        if node.op_type in LINEAR_OPS:
            return LinearExplainer(node.op_type, attrs, n_features, scaler)
        if node.op_type not in _PASS_THROUGH:
            break
        if node.op_type == "Scaler":
            offset = np.asarray(attrs.get("offset", [0.0]), dtype=np.float64)
            scale = np.asarray(attrs.get("scale", [1.0]), dtype=np.float64)
            if scaler is not None:
                raise UnsupportedModelError("more than one Scaler is not supported")
            scaler = (offset, scale)
        current = node.output[0]
    raise UnsupportedModelError(
        "explanations need a TreeEnsemble* or Linear* operator fed by the input "
        f"(found {[n.op_type for n in graph.node]})"
    )
