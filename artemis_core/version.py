"""The installed package's version (``0+unknown`` when run from an uninstalled tree)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("artemis-he")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0+unknown"
