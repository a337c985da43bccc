"""Connected Urban Twins processes: OGC API - Processes and Features for urban digital twins."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("cut-processes")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0"
