"""Terrain of the demo district: a Geest plateau falling to the Elbe in the south (numpy only).

Elevations are metres above sea level (DHHN2016-like); the slope ("Elbhang") follows a gently
curving line a few hundred metres north of the district's southern edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cut_processes.demo.constants import (
    RASTER_HEIGHT,
    RASTER_WIDTH,
    RESOLUTION,
    XMAX,
    XMIN,
    YMAX,
    YMIN,
)


@dataclass(frozen=True)
class Terrain:
    """Parameters of the smooth terrain surface; all lengths and heights in metres."""

    foot: float  # elevation at the foot of the slope (harbour level)
    rise: float  # height of the Elbhang from foot to plateau
    hang_offset: float  # mean northing of the slope centre line, from YMIN
    hang_amplitude: float  # north-south wobble of the slope line
    hang_wavelength: float  # east-west wavelength of the wobble
    hang_phase: float  # radians
    hang_scale: float  # logistic width of the slope
    north_rise: float  # additional rise from south to north edge of the plateau
    valley_x: float  # easting of a shallow north-south brook valley
    valley_depth: float
    valley_width: float
    waves: tuple[tuple[float, float, float, float], ...]  # (kx, ky [rad/m], amplitude, phase)

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Terrain:
        """Draw terrain parameters from ``rng``."""
        waves = []
        for _ in range(4):
            wavelength = rng.uniform(450.0, 1300.0)
            direction = rng.uniform(0.0, np.pi)
            k = 2.0 * np.pi / wavelength
            waves.append(
                (
                    float(k * np.cos(direction)),
                    float(k * np.sin(direction)),
                    float(rng.uniform(0.2, 0.45)),
                    float(rng.uniform(0.0, 2.0 * np.pi)),
                )
            )
        return cls(
            foot=float(rng.uniform(6.0, 7.0)),
            rise=float(rng.uniform(11.0, 13.0)),
            hang_offset=float(rng.uniform(300.0, 350.0)),
            hang_amplitude=float(rng.uniform(20.0, 40.0)),
            hang_wavelength=float(rng.uniform(1500.0, 2300.0)),
            hang_phase=float(rng.uniform(0.0, 2.0 * np.pi)),
            hang_scale=float(rng.uniform(55.0, 75.0)),
            north_rise=float(rng.uniform(2.0, 3.5)),
            valley_x=float(rng.uniform(XMIN + 600.0, XMAX - 600.0)),
            valley_depth=float(rng.uniform(0.8, 1.6)),
            valley_width=float(rng.uniform(90.0, 160.0)),
            waves=tuple(waves),
        )

    def hang_line(self, x: np.ndarray | float) -> np.ndarray:
        """Northing (m) of the slope centre line at easting ``x`` (m)."""
        x = np.asarray(x, dtype=float)
        wobble = np.sin(2.0 * np.pi * (x - XMIN) / self.hang_wavelength + self.hang_phase)
        return YMIN + self.hang_offset + self.hang_amplitude * wobble

    def elevation(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Ground elevation (m above sea level) at easting ``x`` and northing ``y`` (broadcast)."""
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        plateau = 1.0 / (1.0 + np.exp(-(y - self.hang_line(x)) / self.hang_scale))
        z = self.foot + self.rise * plateau + self.north_rise * (y - YMIN) / (YMAX - YMIN)
        valley = np.exp(-(((x - self.valley_x) / self.valley_width) ** 2))
        z = z - self.valley_depth * valley * plateau
        xr, yr = x - XMIN, y - YMIN
        for kx, ky, amplitude, phase in self.waves:
            z = z + amplitude * plateau * np.cos(kx * xr + ky * yr + phase)
        return z

    def grid(self) -> np.ndarray:
        """The DTM as a float32 array (rows north to south) on the district raster grid."""
        xs = XMIN + (np.arange(RASTER_WIDTH) + 0.5) * RESOLUTION
        ys = YMAX - (np.arange(RASTER_HEIGHT) + 0.5) * RESOLUTION
        return self.elevation(xs[None, :], ys[:, None]).astype(np.float32)
