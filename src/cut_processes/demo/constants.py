"""Fixed parameters of the demo district: extent, CRS, raster grid, generator version."""

from __future__ import annotations

#: Bump whenever the generated data changes for a given seed (invalidates cached districts).
GENERATOR_VERSION = 5

#: Name of the generator, recorded in the manifest.
GENERATOR_NAME = "cut-twin demo"

#: Coordinate reference system of every generated geometry and raster.
CRS = "EPSG:25832"

#: District extent in EPSG:25832 metres: (min E, min N, max E, max N); Hamburg Altona/Ottensen.
XMIN, YMIN, XMAX, YMAX = 561000.0, 5933000.0, 563500.0, 5935000.0
BBOX = (XMIN, YMIN, XMAX, YMAX)

#: Raster resolution in metres per pixel; the rasters cover BBOX exactly.
RESOLUTION = 1.0
RASTER_WIDTH = round((XMAX - XMIN) / RESOLUTION)  # 2500 columns
RASTER_HEIGHT = round((YMAX - YMIN) / RESOLUTION)  # 2000 rows
NODATA = -9999.0

#: Buildings keep at least this distance (metres) from the district edge.
EDGE_MARGIN = 3.0

#: Licence of the generated data.
LICENCE = "CC0-1.0"


def source_label(seed: int) -> str:
    """The ``source`` attribute every generated feature carries."""
    return f"generated: cut-twin demo (seed={seed})"
