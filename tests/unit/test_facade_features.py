"""Facade image features on drawn facades with a known number of window rows."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cut_processes.analysis.facades import (
    FEATURE_NAMES,
    facade_feature_matrix,
    facade_features,
    facade_probabilities,
    feature_descriptions,
)

COLUMN = {name: i for i, name in enumerate(FEATURE_NAMES)}


def drawn_facade(rows: int, *, height: int = 420, width: int = 360, sky: float = 0.0,
                 noise: float = 0.0, seed: int = 0) -> np.ndarray:  # fmt: skip
    """A pale wall with ``rows`` evenly spaced rows of five dark windows (grey, 0..1);
    ``sky`` leaves that share of the height empty at the top."""
    img = np.full((height, width), 0.8, dtype=np.float32)
    top = int(sky * height)
    period = (height - top) / rows
    for r in range(rows):
        y0, y1 = int(top + (r + 0.3) * period), int(top + (r + 0.75) * period)
        for c in range(5):
            img[y0:y1, int((c + 0.25) * width / 5) : int((c + 0.75) * width / 5)] = 0.15
    if noise:
        img += np.random.default_rng(seed).normal(0, noise, img.shape).astype(np.float32)
    return np.clip(img, 0, 1)


def feature(values: np.ndarray, name: str) -> float:
    return float(values[COLUMN[name]])


def test_one_value_per_named_feature():
    values = facade_features(drawn_facade(4))
    assert values.shape == (len(FEATURE_NAMES),) and values.dtype == np.float32
    assert np.all(np.isfinite(values))
    assert len(set(FEATURE_NAMES)) == len(FEATURE_NAMES)
    assert [d["name"] for d in feature_descriptions()] == list(FEATURE_NAMES)
    assert all(d["meaning"] and d["unit"] for d in feature_descriptions())


@pytest.mark.parametrize("rows", [2, 3, 4, 5, 6, 8, 10, 12])
@pytest.mark.parametrize(
    "variant",
    [{}, {"sky": 0.2}, {"noise": 0.05, "width": 500}, {"noise": 0.1, "width": 300, "seed": 3}],
    ids=["plain", "sky", "noise", "strong-noise"],
)
def test_periodicity_finds_the_number_of_rows(rows, variant):
    values = facade_features(drawn_facade(rows, **variant))
    # The row period over the edge-rich part, and the window rows counted as peaks.
    assert round(feature(values, "body_rows_from_comb")) == rows
    assert round(feature(values, "strip_rows_median")) == rows
    assert feature(values, "body_dark_peaks") == rows


@pytest.mark.parametrize("rows", [3, 5, 8])
def test_full_height_profiles_count_rows_per_picture_height(rows):
    plain = facade_features(drawn_facade(rows))
    assert feature(plain, "vedge_rows_from_fft") == rows
    assert abs(feature(plain, "vedge_rows_from_acf") - rows) < 0.3
    assert feature(plain, f"vedge_acf_at_{rows}_storeys") > 0.5
    # With a fifth of the picture sky, the same rows repeat 1.25 times per picture height,
    # and the edge-rich part starts about a fifth down.
    sky = facade_features(drawn_facade(rows, sky=0.2))
    assert abs(feature(sky, "vedge_rows_from_acf") - rows / 0.8) < 0.6
    assert abs(feature(sky, "edge_top") - 0.2) < 0.08


def test_size_brightness_and_colour_do_not_matter():
    grey = drawn_facade(6)
    values = facade_features(grey)
    rgb8 = np.repeat((grey * 255).round().astype(np.uint8)[:, :, None], 3, axis=2)
    np.testing.assert_allclose(facade_features(rgb8), values, atol=0.02)
    big = np.kron(grey, np.ones((2, 2), dtype=np.float32))
    assert round(feature(facade_features(big), "body_rows_from_comb")) == 6
    darker = grey * 0.5 + 0.1  # other brightness and contrast: same rhythm
    assert round(feature(facade_features(darker), "body_rows_from_comb")) == 6


def test_matrix_stacks_rows():
    matrix = facade_feature_matrix([drawn_facade(3), drawn_facade(7)])
    assert matrix.shape == (2, len(FEATURE_NAMES))
    assert facade_feature_matrix([]).shape == (0, len(FEATURE_NAMES))


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros(50), "2-D or 3-D"),
        (np.zeros((10, 40)), "at least 16 x 16"),
        (np.zeros((40, 40, 2)), "1, 3 or 4 channels"),
    ],
)
def test_bad_images_are_refused(image, message):
    with pytest.raises(ValueError, match=message):
        facade_features(image)


def test_facade_probabilities_map_onto_the_callers_counts():
    probabilities = np.array([[0.1, 0.6, 0.3], [0.5, 0.0, 0.5]], dtype=np.float32)
    model = SimpleNamespace(
        run=lambda X: {"probabilities": probabilities[: len(X)]},
        card=SimpleNamespace(labels=[2, 5, 9]),
    )
    mapped = facade_probabilities(model, [drawn_facade(2), drawn_facade(5)], [1, 2, 3, 4, 5, 6])
    # 9 storeys is beyond the caller's counts: its probability goes to the nearest, 6.
    np.testing.assert_allclose(mapped[0], [0, 0.1, 0, 0, 0.6, 0.3], atol=1e-6)
    np.testing.assert_allclose(mapped[1], [0, 0.5, 0, 0, 0, 0.5], atol=1e-6)
    assert facade_probabilities(model, [], [1, 2]).shape == (0, 2)
    with pytest.raises(ValueError, match="classes"):
        facade_probabilities(model, [drawn_facade(2)], [])
