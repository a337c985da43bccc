"""``cut-twin import``: counts, rejects, idempotence, nothing half-written."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cut_processes.cli import main

CSV = (
    "document_id,title,text,url,cycling,walking\n"
    "Ott1,Radweg,Zu schmal,https://example.org/1,1,0\n"
    "Ott2,Gehweg,Zu eng,https://example.org/2,0,1\n"
    "Ott3,Falsch,Label,https://example.org/3,2,0\n"
)


@pytest.fixture()
def io_files(tmp_path: Path):
    good = tmp_path / "ottensen.csv"
    good.write_text(CSV, "utf-8")
    bad_rows = tmp_path / "bad_rows.csv"
    bad_rows.write_text("document_id,title,text,url,cycling\n,,,x,1\nOtt9,T,X,u,7\n", "utf-8")
    broken = tmp_path / "broken.csv"
    broken.write_text("a,b\n1,2\n", "utf-8")
    return good, bad_rows, broken, tmp_path / "store.gpkg"


def count(store: Path, collection: str) -> int:
    from cut_processes.io.store import open_store

    return open_store(store).count(collection)


def test_import_prints_counts_and_rejects_and_is_idempotent(io_files):
    good, _, _, store = io_files
    runner = CliRunner()
    args = ["import", "cimt", str(good), "--collection", "beitraege", "--store", str(store)]
    first = runner.invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "cimt: 2 features written to collection 'beitraege'" in first.output
    assert "1 rejected, 0 repaired" in first.output
    assert "rejected: ottensen.csv line 4: document Ott3: label 'cycling' is '2'" in first.output
    assert count(store, "beitraege") == 2
    again = runner.invoke(main, args)
    assert again.exit_code == 0 and count(store, "beitraege") == 2


def test_nothing_imported_is_an_error_and_leaves_the_collection(io_files):
    good, bad_rows, broken, store = io_files
    runner = CliRunner()
    base = ["--collection", "beitraege", "--store", str(store)]
    assert runner.invoke(main, ["import", "cimt", str(good), *base]).exit_code == 0
    nothing = runner.invoke(main, ["import", "cimt", str(bad_rows), *base])
    assert nothing.exit_code == 1
    assert "0 features written" in nothing.output and "2 rejected" in nothing.output
    assert "nothing could be imported" in nothing.output
    unreadable = runner.invoke(main, ["import", "cimt", str(good), str(broken), *base])
    assert unreadable.exit_code == 1
    assert "broken.csv: not a CIMT corpus file" in unreadable.output
    assert count(store, "beitraege") == 2  # neither run touched it


def test_default_store_is_the_demo_district(io_files, monkeypatch):
    good, _, _, _ = io_files
    data_dir = good.parent / "demo"
    data_dir.mkdir()
    monkeypatch.delenv("CUT_STORE", raising=False)
    monkeypatch.setenv("CUT_DATA_DIR", str(data_dir))
    result = CliRunner().invoke(main, ["import", "cimt", str(good)])
    assert result.exit_code == 0, result.output
    assert f"in {data_dir / 'district.gpkg'}" in result.output
    assert count(data_dir / "district.gpkg", "contributions") == 2
