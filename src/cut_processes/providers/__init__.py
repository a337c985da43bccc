"""pygeoapi feature providers of the suite: one provider, two stores (GeoPackage, PostGIS).

``FeatureProvider`` is the provider; ``GeoPackageProvider`` is its former name (it reads
GeoPackages when no ``store`` URL is configured, as before).
"""

from cut_processes.providers.feature import FeatureProvider

GeoPackageProvider = FeatureProvider

__all__ = ["FeatureProvider", "GeoPackageProvider"]
