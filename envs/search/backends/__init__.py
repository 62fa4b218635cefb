"""BM25 index backends behind one interface (see :mod:`envs.search.backends.base`)."""

from envs.search.backends.base import (
    BACKENDS,
    DEFAULT_B,
    DEFAULT_K1,
    SearchHit,
    SearchIndex,
    build_index,
    load_index,
)

__all__ = ["BACKENDS", "DEFAULT_B", "DEFAULT_K1", "SearchHit", "SearchIndex", "build_index", "load_index"]
