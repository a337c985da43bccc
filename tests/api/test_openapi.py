"""The committed OpenAPI document must match what the config generates."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pygeoapi.openapi import generate_openapi_document

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_is_current(monkeypatch: pytest.MonkeyPatch, demo_dir):
    for var in ("CUT_URL", "CUT_HOST", "CUT_PORT", "CUT_DATA_DIR", "CUT_VAR_DIR"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.chdir(ROOT)
    # The document lists each collection's fields, read from the (deterministic) demo data.
    monkeypatch.setenv("CUT_DATA_DIR", str(demo_dir))
    expected = generate_openapi_document(ROOT / "pygeoapi-config.yml", "yaml")
    committed = (ROOT / "openapi" / "openapi.yml").read_text(encoding="utf-8")
    assert committed == expected, "openapi/openapi.yml is stale: run `make openapi`"
    assert os.environ.get("CUT_URL") is None


def test_openapi_lists_the_suite(client):
    doc = client.get("/openapi?f=json").get_json()
    paths = doc["paths"]
    assert "/collections/buildings/items" in paths
    assert "/processes/echo/execution" in paths
