"""Small helpers used by every layer: atomic file writing, locating the shared data."""

from kaldilite.utils.atomic import atomic_open, atomic_path
from kaldilite.utils.paths import data_root

__all__ = ["atomic_open", "atomic_path", "data_root"]
