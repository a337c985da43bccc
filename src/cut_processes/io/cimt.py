"""The CIMT research corpora of citizen contributions -> the contributions schema.

Two CSV layouts (comma-separated, UTF-8), recognised by their headers:

* **DIPAS FreiRaum Ottensen** (Hamburg, August 2021; LREC 2022): ``document_id, title, text,
  url`` and 12 binary topic labels (``cycling``, ``walking``, ``stationary traffic
  (parking)``, ...; multi-label). ``topics`` lists the labels set to 1; ``url`` ends in the
  DIPAS contribution id. No date, category or geometry.
* **Cycling dialogues** Bonn and Moers (2017; EGOV 2022): ``ID, title, text,
  main_category_level1, URL, created, level2_* (30 binary labels), dataset (B, M),
  level1_* (8 binary labels)``. ``category`` is ``main_category_level1`` without its
  ``level1_`` prefix (single-label), ``topics`` the ``level2_`` labels set to 1 (prefix
  stripped), ``project`` the dialogue named by ``dataset``, ``date_created`` ``created``
  in UTC.

A label value other than 0/1, a missing id, or a row with neither title nor text is rejected
with its reason. Texts are never logged.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cut_processes.io.dipas import CONTRIBUTION_FIELDS, CONTRIBUTION_GEOMETRY, contribution
from cut_processes.io.records import (
    DEFAULT_SRID,
    ImportResult,
    UnreadableFileError,
    clean_text,
    dedupe_ids,
    feature,
    parse_datetime,
)

OTTENSEN_COLUMNS = ("document_id", "title", "text", "url")
CYCLING_COLUMNS = ("ID", "title", "text", "main_category_level1", "URL", "created", "dataset")
#: ``dataset`` codes of the cycling dialogues.
DIALOGUES = {
    "B": "Raddialog Bonn 2017",
    "M": "Raddialog Moers 2017",
    "K": "Raddialog Köln-Ehrenfeld 2017",
    "E": "Raddialog Köln-Ehrenfeld 2017",
}
OTTENSEN_PROJECT = "FreiRaum Ottensen (DIPAS, Hamburg 2021)"
OTTENSEN_SOURCE = "CIMT corpus, DIPAS FreiRaum Ottensen; posts CC BY 4.0, annotations CC BY-SA 4.0"
CYCLING_SOURCE = "CIMT cycling dialogues (raddialog); posts CC BY 4.0, annotations CC BY-SA 4.0"


def _labels(row: dict[str, str], names: Sequence[str], cid: str) -> list[str]:
    """Names whose value is 1; a value other than 0/1 is an error."""
    chosen = []
    for name in names:
        value = (row.get(name) or "").strip()
        if value == "1":
            chosen.append(name)
        elif value not in ("0", ""):
            raise ValueError(f"document {cid}: label {name!r} is {value!r}, not 0 or 1")
    return chosen


def _ottensen(row: dict[str, str], labels: Sequence[str]) -> dict[str, Any]:
    cid = clean_text(row.get("document_id"))
    if cid is None:
        raise ValueError("no document_id")
    title, text = clean_text(row.get("title")), clean_text(row.get("text"))
    if title is None and text is None:
        raise ValueError(f"document {cid} has neither title nor text")
    return contribution(
        id=cid,
        title=title,
        text=text,
        project=OTTENSEN_PROJECT,
        url=clean_text(row.get("url")),
        topics=_labels(row, labels, cid),
        source=OTTENSEN_SOURCE,
    )


def _cycling(row: dict[str, str], labels: Sequence[str]) -> dict[str, Any]:
    cid = clean_text(row.get("ID"))
    if cid is None:
        raise ValueError("no ID")
    title, text = clean_text(row.get("title")), clean_text(row.get("text"))
    if title is None and text is None:
        raise ValueError(f"document {cid} has neither title nor text")
    dataset = clean_text(row.get("dataset"))
    if dataset not in DIALOGUES:
        raise ValueError(f"document {cid}: unknown dataset {dataset!r} (known: B, M, K, E)")
    try:
        created = parse_datetime(row.get("created"))
    except ValueError as err:
        raise ValueError(f"document {cid}: created: {err}") from None
    category = clean_text(row.get("main_category_level1"))
    return contribution(
        id=cid,
        title=title,
        text=text,
        category=category.removeprefix("level1_") if category else None,
        date_created=created,
        project=DIALOGUES[dataset],
        url=clean_text(row.get("URL")),
        topics=[name.removeprefix("level2_") for name in _labels(row, labels, cid)],
        source=CYCLING_SOURCE,
    )


def read_cimt(paths: Sequence[str | Path]) -> ImportResult:
    """Contributions of CIMT CSV files (either layout, recognised per file; no geometry).

    :raises UnreadableFileError: a file has neither layout's columns.
    """
    result = ImportResult([], dict(CONTRIBUTION_FIELDS), CONTRIBUTION_GEOMETRY, DEFAULT_SRID)
    for path in map(Path, paths):
        if not path.is_file():
            raise UnreadableFileError(path, "no such file")
        with path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.DictReader(fh)
            header = reader.fieldnames or []
            if all(c in header for c in OTTENSEN_COLUMNS):
                labels = [c for c in header if c not in OTTENSEN_COLUMNS]
                parse = _ottensen
            elif all(c in header for c in CYCLING_COLUMNS):
                labels = [c for c in header if c.startswith("level2_")]
                parse = _cycling
            else:
                raise UnreadableFileError(
                    path,
                    "not a CIMT corpus file: expected the columns "
                    f"{', '.join(OTTENSEN_COLUMNS)} or {', '.join(CYCLING_COLUMNS)}",
                )
            for row in reader:
                ref = f"{path.name} line {reader.line_num}"
                try:
                    record = parse(row, labels)
                except ValueError as err:
                    result.reject(ref, str(err))
                    continue
                result.features.append(feature(record, None))
    dedupe_ids(result, "CIMT")
    return result
