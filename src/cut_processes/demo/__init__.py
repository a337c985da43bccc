"""The deterministic demo district: a generated Hamburg-like quarter (Altona/Ottensen area).

``generate_district(out_dir, seed)`` writes buildings and streets (GeoPackage), DTM and DSM
(GeoTIFF), facade images (PNG) with hidden truth, and a manifest ``demo.json``;
``district_exists(out_dir, seed)`` tells whether a complete district of that seed is there.
See ``docs/demo.md``.
"""

from cut_processes.demo.constants import BBOX, CRS, GENERATOR_VERSION
from cut_processes.demo.generator import district_exists, generate_district

__all__ = ["BBOX", "CRS", "GENERATOR_VERSION", "district_exists", "generate_district"]
