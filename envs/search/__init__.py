"""The search environment: BM25 retrieval over a corpus, single- and multi-hop questions,
answers with citations and deterministic citation-aware rewards.

Importing this package is cheap; backends, corpora and task sets load on first use.
"""

from __future__ import annotations


def register() -> None:
    """Entry point (group ``agentgym.envs``): register the search environments."""
    from envs.search.registration import register_all

    register_all()
