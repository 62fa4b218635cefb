"""Heavy state is loaded once per server process and shared by every session."""

from __future__ import annotations

import pytest

from agentgym.server import RemoteEnvFactory

pytestmark = pytest.mark.slow


async def test_search_sessions_share_one_index_and_task_set(serve):
    server, url = await serve(envs=["search/v0"])
    factory = RemoteEnvFactory(url)
    envs = [await factory.create("search/v0", {"split": "test"}) for _ in range(5)]
    for seed, env in enumerate(envs):
        await env.areset(seed=seed)
    hosted = [s.env for s in server.manager.sessions.values()]
    assert len(hosted) == 5 and len({id(e) for e in hosted}) == 5  # one env per session...
    assert all(e.index is hosted[0].index for e in hosted)  # ...one BM25 index for all of them
    first_tasks = {id(t) for t in hosted[0]._task_list}
    assert all({id(t) for t in e._task_list} == first_tasks for e in hosted)  # and one copy of the tasks
    for env in envs:
        await env.aclose()
    await factory.aclose()
