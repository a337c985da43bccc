"""Shared by the benchmark scripts (run_all.py skips files starting with an underscore)."""

from __future__ import annotations

from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"


def collection(title: str, provider: dict, bbox: list[float]) -> dict:
    """A feature collection resource around one provider definition (CRS84 ``bbox``)."""
    return {
        "type": "collection",
        "title": title,
        "description": title,
        "keywords": ["buildings"],
        "extents": {"spatial": {"bbox": bbox, "crs": CRS84}},
        "providers": [{"type": "feature", **provider}],
    }


def write_config(path: Path, resources: dict, max_items: int) -> None:
    """A pygeoapi configuration with the project's metadata and map, serving ``resources``."""
    project = yaml.safe_load((PROJECT / "pygeoapi-config.yml").read_text())
    config = {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 5000},
            "url": "http://127.0.0.1:5000",
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "languages": ["en-US"],
            "limits": {"default_items": 10, "max_items": max_items},
            "map": project["server"]["map"],
            "pretty_print": False,
        },
        "logging": {"level": "ERROR"},
        "metadata": project["metadata"],
        "resources": resources,
    }
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
