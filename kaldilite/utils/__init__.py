"""Small helpers used by every layer: atomic file writing, locating the shared data, numba's njit with its
on-disk cache saved under a lock (`kaldilite.utils.jit`, imported by the kernels' modules only)."""

from kaldilite.utils.atomic import atomic_open, atomic_path
from kaldilite.utils.paths import data_root

__all__ = ["atomic_open", "atomic_path", "data_root"]
