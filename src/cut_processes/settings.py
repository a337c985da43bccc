"""Suite settings from the environment, read when an app or command starts (never at import)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

MIB = 1024 * 1024


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as err:
        raise ValueError(f"environment variable {name}={raw!r} is not an integer") from err
    if value <= 0:
        raise ValueError(f"environment variable {name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class Settings:
    """What the server and the CLI read from the environment.

    ``var_dir``: working data (jobs, results); ``data_dir``: the demo district;
    ``max_body_bytes``: request body limit in bytes.
    """

    var_dir: Path
    data_dir: Path
    max_body_bytes: int

    @classmethod
    def from_env(cls) -> Settings:
        var_dir = Path(os.environ.get("CUT_VAR_DIR") or "var")
        data_dir = Path(os.environ.get("CUT_DATA_DIR") or var_dir / "demo")
        return cls(
            var_dir=var_dir,
            data_dir=data_dir,
            max_body_bytes=_int_env("CUT_MAX_BODY_BYTES", 64 * MIB),
        )
