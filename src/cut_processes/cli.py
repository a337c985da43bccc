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
    else:
        manifest = generate_district(target, seed)
        counts = ", ".join(f"{k}={v}" for k, v in manifest.get("counts", {}).items())
        click.echo(f"demo district (seed {seed}) written to {target}: {counts}")
    load_district_into_store(target, always=True)


def load_district_into_store(data_dir: Path, always: bool) -> None:
    """With ``$CUT_STORE`` set, copy the demo district's layers into that store.

    ``always`` false: only when a layer is missing there (what ``serve`` does on start).
    """
    location = os.environ.get("CUT_STORE")
    if not location or not (data_dir / "district.gpkg").is_file():
        return
    from cut_processes.io.store import demo_layers, load_demo_into, open_store
    from cut_processes.providers.postgis import safe_url

    shown = safe_url(location) if location.startswith("postgres") else location
    if not always and set(demo_layers(data_dir)) <= set(open_store(location).collections()):
        return
    counts = load_demo_into(location, data_dir)
    listed = ", ".join(f"{k}={v}" for k, v in counts.items())
    click.echo(f"demo district loaded into {shown}: {listed}")


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


def prepare_results_store() -> str:
    """See :func:`cut_processes.processes.publish.prepare_results_store`."""
    from cut_processes.processes.publish import prepare_results_store as prepare

    return prepare()


@main.command()
@click.option("--config", default=None, help=CONFIG_HELP)
@click.option("--output", default=str(COMMITTED_OPENAPI), show_default=True)
def openapi(config: str | None, output: str) -> None:
    """Generate the OpenAPI document from the configuration."""
    prepare_results_store()
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
    load_district_into_store(settings.data_dir, always=False)
    prepare_results_store()
    url = os.environ.get("CUT_URL") or f"http://{host}:{port}"
    env = {**os.environ, "CUT_URL": url, "CUT_HOST": host, "CUT_PORT": str(port)}
    os.environ.update(env)
    # The served OpenAPI document carries this instance's URL; the committed one the default.
    runtime_openapi = (settings.var_dir / "openapi.yml").resolve()
    write_openapi(config_path, runtime_openapi)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    env.update(PYGEOAPI_CONFIG=str(config_path), PYGEOAPI_OPENAPI=str(runtime_openapi))
    argv = [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--timeout",
        "300",
        "--graceful-timeout",
        "10",
        "cut_processes.server:create_app()",
    ]
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
    "--inputs",
    "inputs_file",
    required=True,
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

    config_path = _config_path(config)
    # Processes read collections and rasters through the configuration they run under.
    os.environ["PYGEOAPI_CONFIG"] = str(config_path)
    processor = _load_processor(config_path, process_id)
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


# --- cut-twin import <format> ----------------------------------------------------------------


@main.group("import")
def import_group() -> None:
    """Load real data into the feature store (one collection per import, replaced as a whole).

    The store is --store, else $CUT_STORE, else the demo district's GeoPackage
    ($CUT_DATA_DIR/district.gpkg). docs/data.md describes every format.
    """


def _run_import(
    fmt_name: str,
    sources: tuple[str, ...],
    collection: str | None,
    store: str | None,
    **options: Any,
) -> None:
    from cut_processes.io.importers import FORMATS, default_store_location, write_result
    from cut_processes.io.records import SHOWN_REJECTS, UnreadableFileError

    fmt = FORMATS[fmt_name]
    name = collection or fmt.default_collection
    location = store or default_store_location()
    options = {k: v for k, v in options.items() if v not in (None, ())}
    try:
        result = fmt.reader(list(sources), **options)
    except UnreadableFileError as err:
        raise click.ClickException(f"cannot import: {err}") from err
    except (ValueError, RuntimeError) as err:  # SensorThingsError, bad options
        raise click.ClickException(f"cannot import: {err}") from err
    try:
        written = write_result(result, name, location)
    except (ValueError, OSError) as err:  # the store refused the records or is unreachable
        message = f"cannot write collection {name!r} to {location}: {err}"
        raise click.ClickException(message) from err
    click.echo(
        f"{fmt_name}: {written} features written to collection {name!r} in {location}; "
        f"{len(result.rejected)} rejected, {len(result.repaired)} repaired"
    )
    for label, items in (("rejected", result.rejected), ("repaired", result.repaired)):
        for ref, reason in items[:SHOWN_REJECTS]:
            click.echo(f"  {label}: {ref}: {reason}")
        if len(items) > SHOWN_REJECTS:
            click.echo(f"  ... and {len(items) - SHOWN_REJECTS} more {label}")
    if written == 0:
        raise click.ClickException("nothing could be imported; the collection is unchanged")


def _import_command(fmt_name: str, *extra: click.Option, source_arg: str = "paths"):
    """A ``cut-twin import <fmt_name>`` command with the common options plus ``extra``."""
    from cut_processes.io.importers import FORMATS

    fmt = FORMATS[fmt_name]

    def command(
        sources: tuple[str, ...], collection: str | None, store: str | None, **options: Any
    ) -> None:
        _run_import(fmt_name, sources, collection, store, **options)

    params: list[click.Parameter] = [
        click.Argument(
            [source_arg],
            nargs=-1 if source_arg == "paths" else 1,
            required=True,
            type=click.Path(exists=True, dir_okay=False) if source_arg == "paths" else str,
        ),
        click.Option(
            ["--collection"],
            default=None,
            help=f"Collection to replace [default: {fmt.default_collection}].",
        ),
        click.Option(
            ["--store"],
            default=None,
            help="Store: a GeoPackage path or postgresql:// URL "
            "[default: $CUT_STORE or $CUT_DATA_DIR/district.gpkg].",
        ),
        *extra,
    ]

    def callback(**kwargs: Any) -> None:
        sources = kwargs.pop(source_arg)
        sources = (sources,) if isinstance(sources, str) else sources
        command(sources, kwargs.pop("collection"), kwargs.pop("store"), **kwargs)

    cmd = click.Command(fmt_name, callback=callback, params=params, help=fmt.summary)
    import_group.add_command(cmd)
    return cmd


_SRID = click.Option(
    ["--srid", "source_srid"],
    type=int,
    default=None,
    help="EPSG code of the coordinates when the file names none.",
)
_LICENCE = click.Option(
    ["--licence"], default=None, help="Licence note for `source` [default: by the id prefix]."
)
_SOURCE = click.Option(["--source"], default=None, help="Text of the `source` field.")
_import_command("citygml", _SRID, _LICENCE)
_import_command("cityjson", _SRID, _LICENCE)
_import_command("dipas-geojson", _SOURCE)
_import_command(
    "dipas-csv",
    _SOURCE,
    click.Option(["--project"], default=None, help="Name of the proceeding (not in the CSV)."),
)
_import_command("cimt")
_import_command("munich-stations")
_import_command(
    "munich-counts",
    click.Option(
        ["--stations"],
        type=click.Path(exists=True, dir_okay=False),
        default=None,
        help="munich_counting_stations.csv, to name the directions.",
    ),
)
_import_command(
    "station-geojson",
    _SOURCE,
    click.Option(
        ["--point-tolerance", "point_tolerance_m"],
        type=float,
        default=None,
        help="Metres within which the positions of a malformed Point are merged [default: 1].",
    ),
)
_import_command("dbrad")
_import_command(
    "sensorthings",
    _SOURCE,
    click.Option(
        ["--layer-name", "layer_names"],
        multiple=True,
        help="Keep datastreams with this properties.layerName (repeatable; default all).",
    ),
    click.Option(["--from", "time_from"], default=None, help="Observations from (ISO 8601)."),
    click.Option(["--to", "time_to"], default=None, help="Observations before (ISO 8601)."),
    click.Option(["--timeout"], type=float, default=None, help="Seconds per request [30]."),
    click.Option(["--page-size"], type=int, default=None, help="$top per request [100]."),
    source_arg="url",
)


# -- models: train and evaluate (cut_processes.ml.training) --------------------------------


@main.command()
@click.argument("model_id")
@click.option("--data", default=None, help="Training data folder or file [default: per model].")
@click.option(
    "--out", "out_dir", default=None, help="Output folder [default: the shipped models folder]."
)
def train(model_id: str, data: str | None, out_dir: str | None) -> None:
    """Train a model reproducibly (fixed seeds) and write <id>.onnx + <id>.card.json."""
    import logging
    import time

    from cut_processes.ml.training import UnknownModelIdError
    from cut_processes.ml.training import train as train_model

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    try:
        card = train_model(
            model_id, Path(data) if data else None, Path(out_dir) if out_dir else None
        )
    except (UnknownModelIdError, FileNotFoundError) as err:
        raise click.UsageError(str(err)) from err
    where = Path(out_dir) if out_dir else "the package models folder"
    click.echo(
        f"{card.id}@{card.version} written to {where} (sha256 {card.sha256[:12]}..., "
        f"{time.perf_counter() - started:.0f} s)"
    )
    click.echo(json.dumps(card.raw.get("metrics", {}), indent=2, ensure_ascii=False)[:4000])


@main.command()
@click.argument("model_id")
@click.option("--data", default=None, help="Evaluation data folder or file [default: per model].")
def evaluate(model_id: str, data: str | None) -> None:
    """Measure the served model (and its baseline, in the same run); print JSON metrics."""
    from cut_processes.ml.registry import ModelIntegrityError, ModelNotFoundError
    from cut_processes.ml.training import UnknownModelIdError
    from cut_processes.ml.training import evaluate as evaluate_model

    try:
        metrics = evaluate_model(model_id, Path(data) if data else None)
    except (UnknownModelIdError, FileNotFoundError) as err:
        raise click.UsageError(str(err)) from err
    except (ModelNotFoundError, ModelIntegrityError) as err:
        raise click.ClickException(str(err)) from err
    click.echo(json.dumps(metrics, indent=2, ensure_ascii=False))


if __name__ == "__main__":  # pragma: no cover
    main()
