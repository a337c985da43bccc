"""The fast paths of floor-count give what the plain per-record / per-row code gave.

``Buildings.from_records`` converts whole property columns at once, ALKIS codes are parsed
once per distinct value, and tree explanations sum per-leaf tables found by onnxruntime: each
is checked here against a straightforward reference on awkward inputs.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import shapely
from onnx import TensorProto, helper
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier

from cut_processes.analysis import floors
from cut_processes.io.inputs import InputProblem
from cut_processes.ml.explain import explainer_for
from cut_processes.ml.export import to_onnx
from cut_processes.processes.floor_count import _check_heights, _geojson_geometries

NUMBER_KEYS = ("measured_height", "eaves_height", "year_built", "storeys")
TEXT_KEYS = ("roof_type", "function", "facade_image")


def reference_number(records: list[dict], key: str) -> np.ndarray:
    """The former per-record conversion."""
    out = np.full(len(records), np.nan)
    for i, r in enumerate(records):
        v = r.get(key)
        if v is not None and v != "":
            out[i] = float(v)
    return out


def reference_text(records: list[dict], key: str) -> list:
    return [None if r.get(key) in (None, "") else str(r.get(key)) for r in records]


def reference_code(value, digits=None) -> float:
    if value is None:
        return floors.MISSING
    token = str(value).split("_")[-1]
    if digits is not None:
        token = token[:digits]
    return float(token) if token.isdigit() else floors.MISSING


def from_records(records: list[dict]) -> floors.Buildings:
    boxes = np.array([shapely.box(0, 0, 10 + i, 20) for i in range(len(records))])
    return floors.Buildings.from_records([f"b{i}" for i in range(len(records))], boxes, records)


PLAIN = [
    {"measured_height": 12.5, "eaves_height": 9, "roof_type": "3100",
     "function": "31001_1010", "year_built": 1905, "storeys": 4},
    {"measured_height": None, "eaves_height": np.float64(3.25), "roof_type": "",
     "function": None, "year_built": np.int64(1960)},
    {"measured_height": np.float32(7.1), "eaves_height": True, "facade_image": "img-1"},
    {"measured_height": float("nan"), "storeys": np.int32(2), "function": "2000"},
    {},
]  # fmt: skip
AWKWARD = [
    {"measured_height": "12.5", "eaves_height": " 9 ", "roof_type": 3100,
     "function": "31001_1010", "year_built": "1905", "storeys": ""},
    {"measured_height": "", "eaves_height": "1e1", "roof_type": 1000.0,
     "function": 31001, "year_built": None, "storeys": "3"},
    {"measured_height": -3, "eaves_height": "-2.5", "roof_type": "abc",
     "function": "x_12", "facade_image": 17},
    {"measured_height": 2**70, "eaves_height": "nan", "roof_type": "3100_",
     "function": "31001_"},
]  # fmt: skip


@pytest.mark.parametrize("records", [PLAIN, AWKWARD, PLAIN + AWKWARD, []],
                         ids=["plain", "awkward", "mixed", "empty"])  # fmt: skip
def test_property_columns_match_the_per_record_conversion(records):
    b = from_records(records)
    for key in NUMBER_KEYS:
        got = getattr(b, key)
        assert got.dtype == np.float64 and got.shape == (len(records),)
        np.testing.assert_array_equal(got, reference_number(records, key))
    for key in TEXT_KEYS:
        got = getattr(b, key)
        assert got.dtype == object and got.tolist() == reference_text(records, key)
        assert all(v is None or type(v) is str for v in got)


@pytest.mark.parametrize("records", [PLAIN, AWKWARD, PLAIN + AWKWARD],
                         ids=["plain", "awkward", "mixed"])  # fmt: skip
def test_alkis_codes_match_the_per_value_parse(records):
    b = from_records(records)
    x = floors.height_features(b, None)
    col = floors.FEATURE_NAMES.index
    roof = [reference_code(v) for v in b.roof_type]
    assert x[:, col("roof_code")].tolist() == roof
    assert x[:, col("function_code")].tolist() == [reference_code(v) for v in b.function]
    group = [reference_code(v, digits=1) for v in b.function]
    assert x[:, col("function_group")].tolist() == group
    # The same parse for arrays that did not come from from_records (ints, floats, strings).
    values = np.array([3100, "3100", 1000.0, None, "31001_2010", "31001_2010"], dtype=object)
    np.testing.assert_array_equal(floors._code(values), [reference_code(v) for v in values])
    strings = np.array(["31001_2010", None, "31001_2010", "", "9"], dtype=object)
    np.testing.assert_array_equal(floors._code(strings, digits=1),
                                  [reference_code(v, 1) for v in strings])  # fmt: skip


def test_values_that_are_no_numbers_still_raise():
    with pytest.raises(ValueError):
        from_records([{"measured_height": 10.0}, {"measured_height": "ten"}])
    with pytest.raises(TypeError):
        from_records([{"measured_height": 10.0}, {"measured_height": [10.0]}])
    with pytest.raises(OverflowError):
        from_records([{"measured_height": 10**400}])


@pytest.mark.parametrize("value", [-3, -3.0, "-3", np.float64(-3.0)])
def test_negative_heights_are_refused_with_the_same_message(value):
    b = from_records([{"measured_height": 12.0}, {"measured_height": value}])
    with pytest.raises(InputProblem, match=r"building 'b1': negative measured_height \(-3.0 m\)"):
        _check_heights(b)


# -- explanations: leaf tables (onnxruntime) against the numpy tree walk --------------------

RNG = np.random.default_rng(11)
X = RNG.normal(size=(700, 5)).astype(np.float32)
X[:40, 0] = np.round(X[:40, 0], 1)  # values on split thresholds are likely
Y3 = np.digitize(X[:, 0] + 0.5 * X[:, 1], [-0.5, 0.7])
Y2 = (X[:, 2] - X[:, 3] > 0.2).astype(int)


def _check_column_contributions(explainer, X, columns):
    assert explainer._leaf_tables() is not None, "the onnxruntime leaf tables were not built"
    fast = explainer.column_contributions(X, columns)
    rows = np.arange(len(X))
    full = explainer.contributions(X).values[rows, :, columns]
    walk = explainer._column_chunk(np.ascontiguousarray(X, dtype=np.float32), columns)
    assert fast.shape == (len(X), explainer.n_features) and fast.dtype == np.float64
    np.testing.assert_allclose(fast, full, atol=1e-6)
    np.testing.assert_allclose(fast, walk, atol=1e-6)


@pytest.mark.parametrize(
    "estimator, y",
    [
        (RandomForestClassifier(n_estimators=15, min_samples_leaf=2, random_state=0), Y3),
        (RandomForestClassifier(n_estimators=15, random_state=0), Y2),
        (GradientBoostingClassifier(n_estimators=12, random_state=0), Y3),
        (GradientBoostingClassifier(n_estimators=12, random_state=0), Y2),
    ],
    ids=["forest-3", "forest-2", "boosting-3", "boosting-2"],
)
def test_leaf_tables_give_the_tree_walk_contributions(estimator, y):
    estimator.fit(X, y)
    explainer = explainer_for(onnx.load_from_string(to_onnx(estimator, 5, classifier=True)))
    n_out = len(explainer.outputs)
    for columns in (RNG.integers(0, n_out, len(X)), np.zeros(len(X), dtype=np.int64)):
        _check_column_contributions(explainer, X, columns)
    _check_column_contributions(explainer, X[:1], np.array([n_out - 1]))  # a single row


def test_leaf_tables_over_several_steps_of_rows():
    forest = RandomForestClassifier(n_estimators=250, max_depth=4, random_state=0).fit(X, Y3)
    explainer = explainer_for(onnx.load_from_string(to_onnx(forest, 5, classifier=True)))
    big = np.repeat(X, 12, axis=0)  # 8,400 rows: two steps (8,000 rows each for 250 trees)
    _check_column_contributions(explainer, big, RNG.integers(0, 3, len(big)))


def test_leaf_tables_follow_other_split_modes_and_single_leaf_trees():
    """Tree 0 splits with BRANCH_LT, tree 1 with BRANCH_GT, tree 2 is a single leaf."""
    attrs = dict(
        nodes_treeids=[0, 0, 0, 0, 0, 1, 1, 1, 2],
        nodes_nodeids=[0, 1, 2, 3, 4, 0, 1, 2, 0],
        nodes_featureids=[0, 0, 1, 0, 0, 2, 0, 0, 0],
        nodes_values=[1.0, 0, 0.0, 0, 0, 5.0, 0, 0, 0],
        nodes_modes=["BRANCH_LT", "LEAF", "BRANCH_LT", "LEAF", "LEAF",
                     "BRANCH_GT", "LEAF", "LEAF", "LEAF"],
        nodes_truenodeids=[1, 0, 3, 0, 0, 1, 0, 0, 0],
        nodes_falsenodeids=[2, 0, 4, 0, 0, 2, 0, 0, 0],
        nodes_hitrates=[10.0, 6, 4, 1, 3, 10, 5, 5, 10],
        target_treeids=[0, 0, 0, 1, 1, 2],
        target_nodeids=[1, 3, 4, 1, 2, 0],
        target_ids=[0, 0, 0, 0, 0, 0],
        target_weights=[4.0, -1.0, 3.0, 1.0, 0.0, 0.25],
        n_targets=1, base_values=[0.5], post_transform="NONE", aggregate_function="SUM",
    )  # fmt: skip
    node = helper.make_node("TreeEnsembleRegressor", ["input"], ["variable"],
                            domain="ai.onnx.ml", **attrs)  # fmt: skip
    graph = helper.make_graph(
        [node], "modes",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, 3])],
        [helper.make_tensor_value_info("variable", TensorProto.FLOAT, [None, 1])],
    )  # fmt: skip
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 3)]
    )
    explainer = explainer_for(model)
    x = RNG.normal(scale=4, size=(300, 3)).astype(np.float32)
    x[:20, 0] = 1.0  # exactly on the thresholds
    x[20:40, 1] = 0.0
    x[40:60, 2] = 5.0
    _check_column_contributions(explainer, x, np.zeros(len(x), dtype=np.int64))


def test_output_geometries_are_what_shapely_mapping_gives():
    square = shapely.box(9.93, 53.55, 9.9303, 53.55011)
    with_hole = shapely.Polygon(
        [(0, 0), (10, 0), (10, 10), (0, 10)],
        holes=[[(2, 2), (4, 2), (4, 4)], [(6, 6), (7, 6), (7, 7)]],
    )
    in_3d = shapely.Polygon([(0, 0, 5.5), (3, 0, 5.5), (3, 2, 6.0), (0, 0, 5.5)])
    multi = shapely.MultiPolygon([square, shapely.box(0, 0, 1, 1)])
    geoms = np.array([square, with_hole, in_3d, multi, shapely.Polygon(), square, in_3d])
    got = _geojson_geometries(geoms)
    expected = [shapely.geometry.mapping(g) for g in geoms]
    assert got == expected
    # Tuples like mapping's, not lists: the same objects once serialised and in Python.
    assert [repr(g) for g in got] == [repr(g) for g in expected]


def reference_footprint_shape(footprints):
    """The former width and length: sides of the oriented envelope's exterior ring."""
    ring = shapely.get_exterior_ring(shapely.oriented_envelope(footprints))
    coords, counts = shapely.get_coordinates(ring), shapely.get_num_coordinates(ring)
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    ok = counts >= 4
    width, length = np.zeros(len(footprints)), np.zeros(len(footprints))
    s = starts[ok]
    side1 = np.hypot(*(coords[s + 1] - coords[s]).T)
    side2 = np.hypot(*(coords[s + 2] - coords[s + 1]).T)
    width[ok], length[ok] = np.minimum(side1, side2), np.maximum(side1, side2)
    return width, length


def test_footprint_shape_matches_the_envelope_ring_sides():
    footprints = np.array([
        shapely.box(0, 0, 10, 20),
        shapely.Polygon([(0, 0), (20, 0), (20, 5), (5, 5), (5, 20), (0, 20)]),
        shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], holes=[[(2, 2), (4, 2), (4, 4)]]),
        shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(5, 5, 7, 6)]),
        shapely.Polygon([(0, 0), (10, 0), (20, 0), (0, 0)]),  # no area: a line envelope
        shapely.Polygon([(3, 3), (3, 3), (3, 3), (3, 3)]),  # a point envelope
        shapely.Polygon(),
        None,
        shapely.affinity.rotate(shapely.box(565_000, 5_933_000, 565_012, 5_933_030), 17),
    ])  # fmt: skip
    shape = floors.footprint_shape(footprints)
    width, length = reference_footprint_shape(footprints)
    np.testing.assert_array_equal(shape["width"], width)
    np.testing.assert_array_equal(shape["length"], length)
    assert shape["width"][0] == pytest.approx(10) and shape["length"][0] == pytest.approx(20)
    assert shape["width"][4] == shape["length"][4] == 0
