"""Image features of rectified facade photos, for counting storeys.

A facade's storeys show as a vertical rhythm: rows of windows (dark, with strong vertical
edges) alternate with bands of wall. :func:`facade_features` turns one picture into a fixed
vector of numbers that describe that rhythm, independent of the picture's size, brightness
and contrast:

* the picture is converted to grey, scaled to :data:`PROFILE_HEIGHT` rows (keeping the aspect
  ratio) and contrast-normalised locally (each pixel relative to its neighbourhood), so uneven
  lighting and cast shadows matter little;
* three row profiles are taken: ``vedge`` (mean strength of vertical edges per row: window
  jambs, high in window rows), ``hedge`` (horizontal edges: window heads and sills, cornices)
  and ``dark`` (share of pixels clearly darker than their surroundings: glass);
* of each profile: its autocorrelation at the row period that *n* storeys spread over the
  picture height would have (``n`` = 2 .. 20), the first autocorrelation peak and the
  strongest Fourier component (both as "rows per picture height"), and the number of peaks
  after smoothing at three scales;
* plus the picture's aspect ratio and the vertical extent of the edge-rich part (the facade
  between sky and street).

Pure numpy and Pillow; :data:`FEATURE_NAMES` names every column, in order. The storey model
``floor-count-facade`` (``cut_processes.ml.facade``) is trained on these features.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

#: Rows of the normalised picture every profile is computed on.
PROFILE_HEIGHT = 256
#: Width limits of the normalised picture (pixels); the aspect ratio is kept in between.
MIN_WIDTH, MAX_WIDTH = 64, 1024
#: Storey-count hypotheses whose row period is tested by autocorrelation.
STOREY_HYPOTHESES = tuple(range(2, 21))
#: Smoothing scales for peak counting, as fractions of the picture height (Gaussian sigma).
PEAK_SCALES = (1 / 90, 1 / 50, 1 / 28)
#: Profiles taken of each picture.
PROFILES = ("vedge", "hedge", "dark")

# Shortest and longest row period considered, as fractions of the picture height.
_MIN_PERIOD, _MAX_PERIOD = 1 / 24, 2 / 3


def _profile_feature_names(profile: str) -> list[str]:
    names = [f"{profile}_acf_at_{n}_storeys" for n in STOREY_HYPOTHESES]
    names += [
        f"{profile}_rows_from_acf",
        f"{profile}_acf_peak",
        f"{profile}_rows_from_fft",
        f"{profile}_fft_peak_share",
    ]
    names += [f"{profile}_peaks_sigma_{round(1 / s)}" for s in PEAK_SCALES]
    return names


#: Column strips the facade body is cut into for the per-strip features.
BODY_STRIPS = 6
#: Peak-counting scales of the body features, as fractions of the estimated row period.
BODY_PEAK_SCALES = (0.2, 0.35)
#: Fixed peak-counting scales (fractions of the height) of the per-strip features.
STRIP_PEAK_SCALES = (1 / 60, 1 / 35)

_BODY_FEATURES = [
    "body_rows_from_comb",
    "body_rows_from_best_comb",
    "body_comb_score",
    "body_vedge_peaks",
    "body_dark_peaks",
    "strip_rows_median",
    "strip_rows_spread",
    *[
        f"strip_{profile}_peaks_{stat}_at_{round(100 * s)}pct_period"
        for profile in ("vedge", "dark")
        for s in BODY_PEAK_SCALES
        for stat in ("median", "max")
    ],
    *[f"strip_vedge_peaks_median_sigma_{round(1 / s)}" for s in STRIP_PEAK_SCALES],
]

#: Names of the columns :func:`facade_features` returns, in order.
FEATURE_NAMES: tuple[str, ...] = (
    *[name for profile in PROFILES for name in _profile_feature_names(profile)],
    "log_aspect",
    "edge_extent",
    "edge_top",
    "edge_bottom",
    "rows_from_acf_in_extent",
    "contrast",
    *_BODY_FEATURES,
)

#: What each kind of column means (for model cards and explanations).
FEATURE_GLOSSARY = {
    "acf_at_n_storeys": "autocorrelation of the row profile at the period of n storeys over "
    "the picture height (-1..1; high when the picture shows n regular rows)",
    "rows_from_acf": "picture height divided by the lag of the first autocorrelation peak "
    "(rows per picture height)",
    "acf_peak": "autocorrelation value of that peak (-1..1; regularity of the rows)",
    "rows_from_fft": "strongest Fourier component of the row profile (cycles per picture height)",
    "fft_peak_share": "share of the profile's spectral power in that component (0..1)",
    "peaks_sigma_k": "number of peaks of the profile smoothed with sigma = height / k",
    "log_aspect": "natural log of picture height / width",
    "edge_extent": "share of the picture height with strong vertical edges (the facade body)",
    "edge_top": "top of that part, as a fraction of the height from the top",
    "edge_bottom": "bottom of that part, as a fraction of the height from the top",
    "rows_from_acf_in_extent": "vedge rows_from_acf scaled to the edge-rich part",
    "contrast": "standard deviation of the grey values before normalisation (0..1)",
    "body_rows_from_comb": "rows in the edge-rich part: its height divided by the shortest row "
    "period whose comb score (autocorrelation at 1, 2 and 3 periods minus that half a period "
    "earlier; mean of the vertical-edge and dark-pixel profiles of the column strips) is "
    "within 80 % of the best",
    "body_rows_from_best_comb": "the same with the best-scoring period",
    "body_comb_score": "that best comb score (-2..2; regularity of the rows)",
    "body_vedge_peaks": "peaks of the vertical-edge profile of the edge-rich part, smoothed "
    "with sigma = a fifth of the row period (counts window rows)",
    "body_dark_peaks": "the same for the dark-pixel profile",
    "strip_rows_median": "median over column strips of the rows from each strip's comb period",
    "strip_rows_spread": "standard deviation of those (several buildings or occlusions)",
    "strip_peaks_at_pct_period": "median / maximum over column strips of the peaks of the "
    "strip's profile smoothed with sigma = a share of the row period",
    "strip_vedge_peaks_median_sigma_k": "median over column strips of the peaks of the "
    "vertical-edge profile smoothed with sigma = height / k",
}


_PROFILE_MEANING = {
    "vedge": "vertical-edge profile (row means of |horizontal gradient|: window jambs)",
    "hedge": "horizontal-edge profile (row means of |vertical gradient|: heads, sills, cornices)",
    "dark": "dark-pixel profile (row shares of pixels darker than their surroundings: glass)",
}


def _describe(name: str) -> tuple[str, str]:
    """(meaning, unit) of one feature column."""
    profile = name.split("_", 1)[0]
    of = f"; profile: {_PROFILE_MEANING[profile]}" if profile in _PROFILE_MEANING else ""
    k = name.rsplit("_", 1)[-1]
    if "_acf_at_" in name:
        n = name.split("_acf_at_")[1].split("_")[0]
        text = FEATURE_GLOSSARY["acf_at_n_storeys"].replace("n storeys", f"{n} storeys")
        return text.replace(" n regular", f" {n} regular") + of, "correlation (-1..1)"
    if name.startswith("strip_") and "_peaks_" in name and "pct_period" in name:
        return FEATURE_GLOSSARY["strip_peaks_at_pct_period"] + f" ({name})", "count"
    if name.startswith("strip_vedge_peaks_median_sigma_"):
        return FEATURE_GLOSSARY["strip_vedge_peaks_median_sigma_k"].replace(
            "/ k", f"/ {k}"
        ), "count"
    for key, unit in (
        ("rows_from_acf_in_extent", "rows"),
        ("rows_from_acf", "rows per picture height"),
        ("acf_peak", "correlation (-1..1)"),
        ("rows_from_fft", "cycles per picture height"),
        ("fft_peak_share", "share (0..1)"),
        ("peaks_sigma_", "count"),
        ("log_aspect", "log ratio"),
        ("edge_extent", "share of the picture height"),
        ("edge_top", "share of the picture height"),
        ("edge_bottom", "share of the picture height"),
        ("contrast", "grey value (0..1)"),
        ("body_rows_from_comb", "rows"),
        ("body_rows_from_best_comb", "rows"),
        ("body_comb_score", "correlation contrast (-2..2)"),
        ("body_vedge_peaks", "count"),
        ("body_dark_peaks", "count"),
        ("strip_rows_median", "rows"),
        ("strip_rows_spread", "rows"),
    ):
        if key in name:
            if key == "peaks_sigma_":
                return FEATURE_GLOSSARY["peaks_sigma_k"].replace("/ k", f"/ {k}") + of, unit
            return FEATURE_GLOSSARY[key] + of, unit
    raise KeyError(name)  # pragma: no cover - every name is described


def feature_descriptions() -> list[dict[str, str]]:
    """``{"name", "meaning", "unit"}`` of every column of :func:`facade_features`, in order."""
    return [
        {"name": name, "meaning": meaning, "unit": unit}
        for name in FEATURE_NAMES
        for meaning, unit in [_describe(name)]
    ]


def load_facade_image(path: str | Path) -> np.ndarray:
    """Read a picture file as a grey-value array (float32, 0..1, rows x columns)."""
    with Image.open(path) as img:
        return np.asarray(img.convert("L"), dtype=np.float32) / 255.0


def _grey(image: np.ndarray) -> np.ndarray:
    """Grey values 0..1 (float32) of a 2-D grey or 3-D RGB(A) array (uint8 or float 0..1)."""
    arr = np.asarray(image)
    if arr.ndim == 3:
        if arr.shape[2] not in (3, 4):
            raise ValueError(f"image must have 1, 3 or 4 channels, got {arr.shape[2]}")
        arr = arr[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    elif arr.ndim != 2:
        raise ValueError(f"image must be a 2-D or 3-D array, got shape {arr.shape}")
    grey = arr.astype(np.float32)
    if np.issubdtype(np.asarray(image).dtype, np.integer):
        grey = grey / 255.0
    return grey


def _resized(grey: np.ndarray) -> np.ndarray:
    height, width = grey.shape
    new_width = int(np.clip(round(PROFILE_HEIGHT * width / height), MIN_WIDTH, MAX_WIDTH))
    img = Image.fromarray(np.ascontiguousarray(grey, dtype=np.float32), mode="F")
    return np.asarray(img.resize((new_width, PROFILE_HEIGHT), Image.Resampling.BOX))


def _box_blur(arr: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1) x (2r+1) window (edges replicated), by cumulative sums."""
    size = 2 * radius + 1
    padded = np.pad(arr, radius, mode="edge").astype(np.float64)
    csum = np.cumsum(padded, axis=0)
    csum = np.vstack([np.zeros((1, csum.shape[1])), csum])
    rows = (csum[size:] - csum[:-size]) / size
    csum = np.cumsum(rows, axis=1)
    csum = np.hstack([np.zeros((csum.shape[0], 1)), csum])
    return ((csum[:, size:] - csum[:, :-size]) / size).astype(np.float32)


def _gaussian_smooth(profile: np.ndarray, sigma: float) -> np.ndarray:
    """1-D Gaussian smoothing with reflected ends."""
    radius = max(1, int(3 * sigma))
    offsets = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (offsets / sigma) ** 2)
    kernel /= kernel.sum()
    padded = np.pad(profile, radius, mode="reflect")
    return np.convolve(padded, kernel, mode="valid")


def _row_profiles(normalised: np.ndarray) -> dict[str, np.ndarray]:
    vertical_edges = np.abs(np.diff(normalised, axis=1)).mean(axis=1)
    horizontal = np.abs(np.diff(normalised, axis=0)).mean(axis=1)
    horizontal_edges = np.concatenate(
        [horizontal[:1], (horizontal[1:] + horizontal[:-1]) / 2, horizontal[-1:]]
    )
    dark = (normalised < -0.5).mean(axis=1)
    return {"vedge": vertical_edges, "hedge": horizontal_edges, "dark": dark.astype(np.float32)}


def _detrended(profile: np.ndarray) -> np.ndarray:
    """The profile minus its slow trend (sky, street, lighting), scaled to unit variance."""
    trend = _gaussian_smooth(profile.astype(np.float64), PROFILE_HEIGHT / 8)
    rest = profile - trend
    std = rest.std()
    return rest / std if std > 1e-9 else np.zeros_like(rest)


def _autocorrelation(signal: np.ndarray) -> np.ndarray:
    """Normalised autocorrelation (biased estimate) for lags 0 .. len-1."""
    n = len(signal)
    spectrum = np.fft.rfft(signal, 2 * n)
    acf = np.fft.irfft(spectrum * np.conj(spectrum))[:n]
    return acf / acf[0] if acf[0] > 0 else np.zeros(n)


def _count_peaks(profile: np.ndarray, sigma: float, threshold: float = 0.25) -> int:
    """Local maxima of the smoothed profile that rise above its mean by ``threshold`` of
    its standard deviation (so ripples of noise between rows do not count)."""
    smooth = _gaussian_smooth(profile, sigma)
    centre = smooth[1:-1]
    is_peak = (centre > smooth[:-2]) & (centre >= smooth[2:])
    return int(np.count_nonzero(is_peak & (centre > smooth.mean() + threshold * smooth.std())))


def _profile_features(profile: np.ndarray) -> list[float]:
    height = len(profile)
    signal = _detrended(profile)
    acf = _autocorrelation(signal)
    lags = np.arange(height, dtype=np.float64)
    at_hypotheses = np.interp(height / np.asarray(STOREY_HYPOTHESES, dtype=np.float64), lags, acf)

    lo, hi = int(height * _MIN_PERIOD), int(height * _MAX_PERIOD)
    window = acf[lo - 1 : hi + 2]
    maxima = np.flatnonzero((window[1:-1] > window[:-2]) & (window[1:-1] >= window[2:])) + lo
    maxima = maxima[acf[maxima] > 0.05]
    if maxima.size:
        # The first clear peak: the smallest lag whose value is near the best peak's value,
        # so a doubled period (every second row) does not win over the storey period.
        best = acf[maxima].max()
        first = maxima[acf[maxima] >= 0.7 * best][0]
        rows_from_acf, acf_peak = height / float(first), float(acf[first])
    else:
        rows_from_acf, acf_peak = 0.0, 0.0

    windowed = signal * np.hanning(height)
    power = np.abs(np.fft.rfft(windowed)) ** 2
    freqs = np.arange(len(power), dtype=np.float64)  # cycles per picture height
    band = (freqs >= 1 / _MAX_PERIOD) & (freqs <= 1 / _MIN_PERIOD)
    total = power[1:].sum()
    if total > 0:
        k = np.flatnonzero(band)[np.argmax(power[band])]
        rows_from_fft, fft_share = float(freqs[k]), float(power[k] / total)
    else:
        rows_from_fft, fft_share = 0.0, 0.0

    peaks = [_count_peaks(signal, height * s) for s in PEAK_SCALES]
    return [*at_hypotheses.tolist(), rows_from_acf, acf_peak, rows_from_fft, fft_share, *peaks]


def _edge_extent(vertical_edges: np.ndarray) -> tuple[float, float]:
    """Top and bottom (fractions of the height) of the rows rich in vertical edges."""
    smooth = _gaussian_smooth(vertical_edges.astype(np.float64), len(vertical_edges) / 40)
    floor, peak = np.percentile(smooth, 5), np.percentile(smooth, 95)
    rich = np.flatnonzero(smooth > floor + 0.3 * (peak - floor))
    if rich.size == 0:
        return 0.0, 1.0
    return rich[0] / len(smooth), (rich[-1] + 1) / len(smooth)


def _normalised_picture(grey: np.ndarray) -> np.ndarray:
    """Scaled to PROFILE_HEIGHT rows, each pixel against its neighbourhood's mean and spread
    (local contrast normalisation: uneven light and cast shadows matter little)."""
    small = _resized(grey)
    radius = PROFILE_HEIGHT // 16
    highpass = small - _box_blur(small, radius)
    spread = np.sqrt(_box_blur(highpass**2, radius))
    return highpass / (spread + 0.02)


def _comb_scores(acf: np.ndarray, periods: np.ndarray, harmonics: int = 3) -> np.ndarray:
    """Periodicity score of each candidate period: mean autocorrelation at 1..harmonics
    multiples of the period minus that at the half-way lags in between (in phase minus
    anti-phase; only lags within 3/4 of the signal). High for the true row period, about
    zero for periods much shorter than a row (the profile is smooth there), low for half
    and double the period."""
    k = np.arange(1, harmonics + 1)
    in_phase, anti_phase = np.outer(periods, k), np.outer(periods, k - 0.5)
    valid = in_phase < 0.75 * len(acf)
    lags = np.arange(len(acf))
    contrast = np.interp(in_phase, lags, acf) - np.interp(anti_phase, lags, acf)
    return (contrast * valid).sum(axis=1) / np.maximum(valid.sum(axis=1), 1)


def _shortest_good_period(acf: np.ndarray, periods: np.ndarray) -> tuple[float, float, float]:
    """(shortest period scoring >= 80 % of the best, best period, best score)."""
    scores = _comb_scores(acf, periods)
    best = int(np.argmax(scores))
    good = np.flatnonzero(scores >= 0.8 * scores[best]) if scores[best] > 0 else [best]
    return float(periods[good[0]]), float(periods[best]), float(scores[best])


def _body_features(normalised: np.ndarray, top: float, bottom: float) -> list[float]:
    """Row rhythm of the edge-rich part (the facade body), overall and per column strip."""
    height, width = normalised.shape
    first = int(top * height)
    last = min(height, max(int(bottom * height), first + 16))
    first = last - max(16, last - first)
    body = normalised[first:last]
    length = last - first
    bounds = np.linspace(0, width - 1, BODY_STRIPS + 1).astype(int)
    vertical = np.abs(np.diff(body, axis=1))
    dark = (body < -0.5).astype(np.float32)

    # Strip profiles (strips x rows) via cumulative sums over columns.
    def strip_means(arr: np.ndarray) -> np.ndarray:
        csum = np.concatenate([np.zeros((arr.shape[0], 1)), np.cumsum(arr, axis=1)], axis=1)
        hi = np.minimum(bounds[1:], arr.shape[1])
        return ((csum[:, hi] - csum[:, bounds[:-1]]) / np.maximum(hi - bounds[:-1], 1)).T

    vertical_strips, dark_strips = strip_means(vertical), strip_means(dark)
    vertical_detrended = np.array([_detrended(p) for p in vertical_strips])
    dark_detrended = np.array([_detrended(p) for p in dark_strips])
    # Row rhythm per strip from both profiles (edges fail on noisy walls, darkness on pale
    # glass): the mean of their autocorrelations.
    acfs = np.array(
        [
            (_autocorrelation(v) + _autocorrelation(d)) / 2
            for v, d in zip(vertical_detrended, dark_detrended, strict=True)
        ]
    )
    periods = np.linspace(max(4.0, length / 24), length / 1.2, 200)
    period, best_period, best_score = _shortest_good_period(acfs.mean(axis=0), periods)
    per_strip = [length / _shortest_good_period(acf, periods)[0] for acf in acfs]

    body_vertical = _detrended(vertical.mean(axis=1))
    body_dark = _detrended(dark.mean(axis=1))
    values = [
        length / period,
        length / best_period,
        best_score,
        _count_peaks(body_vertical, max(1.0, period / 5), threshold=0.0),
        _count_peaks(body_dark, max(1.0, period / 5), threshold=0.0),
        float(np.median(per_strip)),
        float(np.std(per_strip)),
    ]
    for strips in (vertical_detrended, dark_detrended):
        for share in BODY_PEAK_SCALES:
            counts = [_count_peaks(p, max(1.0, period * share), threshold=0.0) for p in strips]
            values += [float(np.median(counts)), float(np.max(counts))]
    for scale in STRIP_PEAK_SCALES:
        counts = [_count_peaks(p, height * scale, threshold=0.0) for p in vertical_detrended]
        values.append(float(np.median(counts)))
    return values


def facade_features(image: np.ndarray) -> np.ndarray:
    """The feature vector of one facade picture.

    :param image: rectified facade picture, rows x columns (grey) or rows x columns x 3/4
        (RGB/RGBA); uint8 (0..255) or float (0..1). At least 16 x 16 pixels.
    :returns: float32 vector, one value per name in :data:`FEATURE_NAMES`.
    :raises ValueError: if the array is not a picture or too small.
    """
    grey = _grey(image)
    height, width = grey.shape
    if height < 16 or width < 16:
        raise ValueError(f"image must be at least 16 x 16 pixels, got {width} x {height}")
    normalised = _normalised_picture(grey)
    profiles = _row_profiles(normalised)

    values: list[float] = []
    per_profile = {}
    for name in PROFILES:
        per_profile[name] = _profile_features(profiles[name])
        values += per_profile[name]
    top, bottom = _edge_extent(profiles["vedge"])
    extent = bottom - top
    rows_from_acf = per_profile["vedge"][len(STOREY_HYPOTHESES)]
    values += [
        float(np.log(height / width)),
        extent,
        top,
        bottom,
        rows_from_acf * extent,
        float(grey.std()),
    ]
    values += _body_features(normalised, top, bottom)
    return np.asarray(values, dtype=np.float32)


def facade_feature_matrix(images: list[np.ndarray]) -> np.ndarray:
    """:func:`facade_features` of several pictures, stacked: float32, pictures x features."""
    if not images:
        return np.zeros((0, len(FEATURE_NAMES)), dtype=np.float32)
    return np.vstack([facade_features(image) for image in images])


def facade_probabilities(model: Any, images: list[np.ndarray], classes: Any) -> np.ndarray:
    """Storey-count probabilities of facade pictures, on a caller's list of counts.

    :param model: the loaded ``floor-count-facade`` model (anything with ``run(features)``
        giving ``probabilities`` and ``card.labels``, e.g.
        ``cut_processes.ml.registry.get_model("floor-count-facade")``).
    :param images: pictures (see :func:`facade_features`).
    :param classes: the storey counts of the caller's columns (e.g. another model's labels).
    :returns: pictures x classes, float64, rows summing to 1. A count the facade model knows
        but ``classes`` lacks gives its probability to the nearest count in ``classes``.
    """
    targets = np.asarray(classes, dtype=np.int64).ravel()
    if targets.size == 0:
        raise ValueError("classes: no storey counts given")
    if not images:
        return np.zeros((0, targets.size))
    probabilities = np.asarray(
        model.run(facade_feature_matrix(images))["probabilities"], dtype=np.float64
    )
    labels = np.asarray(model.card.labels, dtype=np.int64)
    nearest = np.abs(labels[:, None] - targets[None, :]).argmin(axis=1)
    mapping = np.zeros((labels.size, targets.size))
    mapping[np.arange(labels.size), nearest] = 1.0
    mapped = probabilities @ mapping
    return mapped / np.maximum(mapped.sum(axis=1, keepdims=True), 1e-12)
