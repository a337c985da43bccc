"""pygeoapi feature providers of the suite."""

from cut_processes.providers.geopackage import GeoPackageProvider

__all__ = ["GeoPackageProvider"]
