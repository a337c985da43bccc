"""Training pipelines of the shipped models: ``cut-twin train <id>`` and ``evaluate <id>``.

A trainer is ``trainer(data, out_dir) -> ModelCard``: it reads its data (``data`` or its
default place), fits with fixed seeds, and writes ``<out_dir>/<id>.onnx`` and
``<id>.card.json`` through :func:`cut_processes.ml.export.write_model`. Modules add trainers
with ``@register_trainer("model-id")`` (and evaluators with ``@register_evaluator``); the
modules of the shipped models are imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cut_processes.ml.registry import PACKAGE_MODELS_DIR, ModelCard

Trainer = Callable[[Path | None, Path], ModelCard]
#: An evaluator: (data folder or None, models folder or None = the registry) -> metrics.
Evaluator = Callable[[Path | None], dict[str, Any]]

TRAINERS: dict[str, Trainer] = {}
EVALUATORS: dict[str, Evaluator] = {}

#: Modules that register the trainers of shipped models (missing ones are skipped).
TRAINER_MODULES = (
    "cut_processes.ml.facade",
    "cut_processes.ml.floor_height",
    "cut_processes.ml.topics",
    "cut_processes.analysis.cycling_counts",  # evaluator only: cycling-counters
    "cut_processes.analysis.cycling_eval",  # evaluator only: cycling-corridors
)
#: Modules of TRAINER_MODULES that failed to import, with the error (shown on unknown ids).
BROKEN_MODULES: dict[str, str] = {}


class UnknownModelIdError(LookupError):
    """No trainer (or evaluator) for that model id."""

    def __init__(self, model_id: str, known: list[str], what: str = "trainer"):
        self.model_id, self.known = model_id, known
        super().__init__(f"no {what} for model {model_id!r}; known: {', '.join(known) or '(none)'}")


def register_trainer(model_id: str) -> Callable[[Trainer], Trainer]:
    """Decorator: ``@register_trainer("floor-height")`` makes the function the model's trainer."""

    def decorate(trainer: Trainer) -> Trainer:
        TRAINERS[model_id] = trainer
        return trainer

    return decorate


def register_evaluator(model_id: str) -> Callable[[Evaluator], Evaluator]:
    """Decorator: the function measures the shipped model ``model_id`` (``cut-twin evaluate``)."""

    def decorate(evaluator: Evaluator) -> Evaluator:
        EVALUATORS[model_id] = evaluator
        return evaluator

    return decorate


def _load_trainer_modules() -> None:
    for name in TRAINER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # the module exists but something it imports does not
                BROKEN_MODULES[name] = repr(err)
            continue
        except Exception as err:  # one broken module must not hide the others' trainers
            BROKEN_MODULES[name] = repr(err)
            continue
        BROKEN_MODULES.pop(name, None)


def known_models() -> list[str]:
    """Ids with a trainer."""
    _load_trainer_modules()
    return sorted(TRAINERS)


def train(model_id: str, data: Path | None = None, out_dir: Path | None = None) -> ModelCard:
    """Train ``model_id`` reproducibly and write its files into ``out_dir``.

    :param data: the training data (folder or file; the trainer's default place if None).
    :param out_dir: where ``<id>.onnx`` and ``<id>.card.json`` go [default: the package's
        models folder, i.e. the shipped model is replaced].
    :raises UnknownModelIdError: naming the known ids.
    """
    _load_trainer_modules()
    if model_id not in TRAINERS:
        raise UnknownModelIdError(model_id, sorted(TRAINERS))
    target = Path(out_dir) if out_dir is not None else PACKAGE_MODELS_DIR
    target.mkdir(parents=True, exist_ok=True)
    return TRAINERS[model_id](Path(data) if data is not None else None, target)


def evaluate(model_id: str, data: Path | None = None) -> dict[str, Any]:
    """Metrics of the model the registry serves for ``model_id`` (with its baseline)."""
    _load_trainer_modules()
    if model_id not in EVALUATORS:
        raise UnknownModelIdError(model_id, sorted(EVALUATORS), "evaluator")
    return EVALUATORS[model_id](Path(data) if data is not None else None)
