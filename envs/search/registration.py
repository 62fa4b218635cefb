"""The search environment ids (kept out of ``__init__`` so registering imports nothing heavy)."""

from __future__ import annotations

import agentgym

ENTRY = "envs.search.env:SearchEnv"


def register_all() -> None:
    agentgym.register(
        "search/v0",
        ENTRY,
        description="BM25 search over Wikipedia summaries; task_set=multihop|singlehop|trivia|descriptions",
        extra="search",
        task_set="multihop",
    )
    agentgym.register(
        "search-singlehop/v0",
        ENTRY,
        description="single-hop questions (trivia + article descriptions) over Wikipedia summaries, with citations",
        extra="search",
        suites=["search_singlehop"],
        task_set="singlehop",
        max_turns=8,
    )
    agentgym.register(
        "search-multihop/v0",
        ENTRY,
        description="2-4 hop questions from mention-graph walks over Wikipedia summaries, with citation rewards",
        extra="search",
        suites=["search_multihop"],
        task_set="multihop",
        max_turns=16,
    )
