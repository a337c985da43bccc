"""`cut-twin` through click's runner: run, openapi."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cut_processes.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(ROOT / "pygeoapi-config.yml")


def test_run_echo_writes_the_result_file(tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"inputs": {"message": "Moin", "pause": 0.15}}))
    out = tmp_path / "result.json"
    result = CliRunner().invoke(
        main, ["run", "echo", "--inputs", str(request), "--output", str(out), "--config", CONFIG]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(out.read_text())
    assert body["message"] == "Moin"
    assert body["provenance"]["process"] == "echo"
    assert "%] done" in result.stderr


def test_run_reads_a_bare_inputs_object_from_stdin():
    result = CliRunner().invoke(
        main, ["run", "echo", "--inputs", "-", "--config", CONFIG, "--quiet"],
        input=json.dumps({"message": "from stdin"}),
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["message"] == "from stdin"


def test_run_bad_input_names_it(tmp_path):
    request = tmp_path / "request.json"
    request.write_text(json.dumps({"inputs": {"message": "x", "pause": -3}}))
    result = CliRunner().invoke(main, ["run", "echo", "--inputs", str(request), "--config", CONFIG])
    assert result.exit_code == 1
    assert "input 'pause'" in result.output


def test_run_unknown_process_lists_the_known_ones(tmp_path):
    request = tmp_path / "request.json"
    request.write_text("{}")
    result = CliRunner().invoke(main, ["run", "nope", "--inputs", str(request), "--config", CONFIG])
    assert result.exit_code == 2
    assert "unknown process 'nope'" in result.output
    assert "echo" in result.output


def test_run_unreadable_inputs_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    result = CliRunner().invoke(main, ["run", "echo", "--inputs", str(bad), "--config", CONFIG])
    assert result.exit_code == 2
    assert "cannot read inputs" in result.output
