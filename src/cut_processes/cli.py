"""``cut-twin``: serve, run, demo, openapi (and, as they land, train, evaluate, import)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from cut_processes.settings import Settings

DEFAULT_CONFIG = "pygeoapi-config.yml"
CONFIG_HELP = "pygeoapi configuration [default: pygeoapi-config.yml]."
COMMITTED_OPENAPI = Path("openapi/openapi.yml")


def _config_path(config: str | None) -> Path:
    path = Path(config or os.environ.get("PYGEOAPI_CONFIG") or DEFAULT_CONFIG)
    if not path.is_file():
        raise click.UsageError(f"configuration file not found: {path}")
    return path.resolve()


@click.group()
@click.version_option(package_name="cut-processes")
def main() -> None:
    """Connected Urban Twins processes: OGC API analyses for urban digital twins."""


@main.command()
@click.option("--seed", default=42, show_default=True, help="Random seed of the district.")
@click.option(
    "--out", "out_dir", default=None, help="Output folder [default: $CUT_DATA_DIR or var/demo]."
)
@click.option("--force", is_flag=True, help="Regenerate even when the district exists.")
def demo(seed: int, out_dir: str | None, force: bool) -> None:
    """Generate the demo district (buildings, streets, DSM/DTM, facade images)."""
    from cut_processes.demo import district_exists, generate_district

    target = Path(out_dir) if out_dir else Settings.from_env().data_dir
    if not force and district_exists(target, seed):
        click.echo(f"demo district (seed {seed}) already in {target}")
        return
    manifest = generate_district(target, seed)
    counts = ", ".join(f"{k}={v}" for k, v in manifest.get("counts", {}).items())
    click.echo(f"demo district (seed {seed}) written to {target}: {counts}")


def write_openapi(config_path: Path, output: Path) -> bool:
    """Generate the OpenAPI document; write it only when it changed. Returns True if written."""
    from pygeoapi.openapi import generate_openapi_document

    content = generate_openapi_document(config_path, "yaml")
    if output.is_file() and output.read_text(encoding="utf-8") == content:
        return False
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_suffix(output.suffix + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(output)
    return True


@main.command()
@click.option("--config", default=None, help=CONFIG_HELP)
@click.option("--output", default=str(COMMITTED_OPENAPI), show_default=True)
def openapi(config: str | None, output: str) -> None:
    """Generate the OpenAPI document from the configuration."""
    changed = write_openapi(_config_path(config), Path(output))
    click.echo(f"{output} {'written' if changed else 'up to date'}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--workers", default=2, show_default=True, type=int, help="gunicorn web workers.")
@click.option("--threads", default=8, show_default=True, type=int, help="Threads per web worker.")
@click.option("--config", default=None, help=CONFIG_HELP)
@click.option("--seed", default=42, show_default=True, help="Seed of the demo district.")
def serve(host: str, port: int, workers: int, threads: int, config: str | None, seed: int) -> None:
    """Generate what is missing (demo district, OpenAPI) and start gunicorn."""
    from cut_processes.demo import district_exists, generate_district

    config_path = _config_path(config)
    settings = Settings.from_env()
    if "CUT_DATA_DIR" not in os.environ and not district_exists(settings.data_dir, seed):
        click.echo(f"generating the demo district into {settings.data_dir} ...")
        generate_district(settings.data_dir, seed)
    url = os.environ.get("CUT_URL") or f"http://{host}:{port}"
    env = {**os.environ, "CUT_URL": url, "CUT_HOST": host, "CUT_PORT": str(port)}
    os.environ.update(env)
    # The served OpenAPI document carries this instance's URL; the committed one the default.
    runtime_openapi = (settings.var_dir / "openapi.yml").resolve()
    write_openapi(config_path, runtime_openapi)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    env.update(PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(runtime_openapi))
    argv = [
        sys.executable, "-m", "gunicorn",
        "--bind", f"{host}:{port}",
        "--workers", str(workers),
        "--threads", str(threads),
        "--timeout", "300",
        "--graceful-timeout", "10",
        "cut_processes.server:create_app()",
    ]  # fmt: skip
    click.echo(f"serving {url} (config {config_path})")
    os.execve(sys.executable, argv, env)


def _load_processor(config_path: Path, process_id: str) -> Any:
    from pygeoapi.plugin import load_plugin
    from pygeoapi.util import yaml_load

    with config_path.open(encoding="utf-8") as fh:
        config = yaml_load(fh)
    resources = config.get("resources", {})
    processes = sorted(k for k, v in resources.items() if v.get("type") == "process")
    if process_id not in processes:
        raise click.UsageError(f"unknown process {process_id!r}; known: {', '.join(processes)}")
    processor_def = dict(resources[process_id]["processor"], allow_local_paths=True)
    return load_plugin("process", processor_def)


@main.command()
@click.argument("process_id")
@click.option(
    "--inputs", "inputs_file", required=True,
    help='JSON file with {"inputs": {...}} or the inputs object; - for stdin.',
)
@click.option("--output", "output_file", default=None, help="Result file [default: stdout].")
@click.option("--config", default=None, help=CONFIG_HELP)
@click.option("--quiet", is_flag=True, help="No progress messages on stderr.")
def run(
    process_id: str, inputs_file: str, output_file: str | None, config: str | None, quiet: bool
) -> None:
    """Run a process locally, without a server (href inputs may be local paths)."""
    from cut_processes.processes.base import InputError

    processor = _load_processor(_config_path(config), process_id)
    try:
        raw = sys.stdin.read() if inputs_file == "-" else Path(inputs_file).read_text("utf-8")
        request = json.loads(raw)
    except (OSError, json.JSONDecodeError) as err:
        raise click.UsageError(f"cannot read inputs from {inputs_file}: {err}") from err
    inputs = request.get("inputs", request) if isinstance(request, dict) else request
    if not quiet and hasattr(processor, "set_progress_callback"):
        processor.set_progress_callback(
            lambda pct, msg: click.echo(f"[{pct:5.1f} %] {msg}", err=True)
        )
    try:
        mimetype, result = processor.execute(inputs)
    except InputError as err:
        raise click.ClickException(str(err)) from err
    if isinstance(result, dict | list):
        payload = json.dumps(result, ensure_ascii=False, indent=2).encode("utf-8")
    elif isinstance(result, str):
        payload = result.encode("utf-8")
    else:
        payload = result
    if output_file:
        Path(output_file).write_bytes(payload)
        click.echo(f"{mimetype} result written to {output_file}", err=True)
    else:
        sys.stdout.buffer.write(payload + (b"\n" if not payload.endswith(b"\n") else b""))


if __name__ == "__main__":  # pragma: no cover
    main()
