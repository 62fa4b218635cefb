"""The web server over real HTTP: fragments, errors without tracebacks, live events, ports, the CLI."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from agentgym.errors import UserError
from agentgym.view import cli
from agentgym.view.server import ASSETS, create_app, serve
from agentgym.view.viewer import Viewer
from tests.view.conftest import make_trajectory, write_jsonl


async def started(viewer, poll_s=0.05):
    server = TestServer(create_app(viewer, poll_s=poll_s))
    await server.start_server()
    return server


def test_every_asset_is_local():
    """No CDN, no web font, no remote script: the page renders offline."""
    for name in ("index.html", "app.js", "app.css"):
        text = (ASSETS / name).read_text()
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}", text, re.I), name
        assert "@import" not in text


async def test_fragments_and_mistakes(runs_root):
    server = await started(Viewer([runs_root]))
    try:
        async with ClientSession(base_url=str(server.make_url(""))) as s:

            async def get(path):
                async with s.get(path) as r:
                    return r.status, await r.text()

            status, page = await get("/")
            assert status == 200 and "/assets/app.js" in page
            assert (await get("/assets/app.css"))[0] == 200
            assert (await get("/assets/..%2Fcli.py"))[0] == 404
            assert (await get("/assets/index.html"))[0] == 404
            status, html = await get("/f/runs")
            assert status == 200 and html.count("<tr data-run=") == 4
            status, html = await get("/f/episodes?run=maze&success=no&limit=5")
            assert status == 200 and "episodes match" in html and html.count('class="episode-row"') == 5
            status, html = await get("/f/episode?run=maze&at=1:3")
            assert status == 200 and "turn 2" in html
            for path, words in (
                ("/f/episodes?run=maze&rmin=abc", "rmin must be a number"),
                ("/f/run?run=nope", "no run"),
                ("/f/episode?run=maze&at=9:0", "no trajectory file"),
                ("/f/episode?run=maze&at=x", "FILE:LINE"),
                ("/f/compare?a=maze&b=eval/after", "compare two eval runs"),
            ):
                status, html = await get(path)
                assert status == 400 and words in html and "Traceback" not in html, (path, html)
    finally:
        await server.close()


async def test_unexpected_errors_never_reach_the_page(runs_root, monkeypatch):
    viewer = Viewer([runs_root])

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(viewer, "runs_fragment", broken)
    server = await started(viewer)
    try:
        async with ClientSession() as s, s.get(server.make_url("/f/runs")) as r:
            text = await r.text()
        assert r.status == 500 and "secret internal detail" not in text and "Traceback" not in text
    finally:
        await server.close()


async def test_live_events_follow_the_files(runs_root):
    viewer = Viewer([runs_root])
    server = await started(viewer)
    try:
        async with ClientSession() as s, s.get(server.make_url("/events")) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")

            async def next_event():
                while True:
                    line = (await asyncio.wait_for(r.content.readline(), 10)).decode()
                    if line.startswith("data:"):
                        return json.loads(line[5:])

            assert (await next_event())["type"] == "hello"
            await asyncio.sleep(0.2)  # the watcher has taken its first look
            with (runs_root / "maze" / "metrics.jsonl").open("a") as fh:
                fh.write(json.dumps({"step": 4, "kind": "train", "reward/mean": 0.9}) + "\n")
            assert await next_event() == {"type": "run", "run": "maze"}
            write_jsonl(
                runs_root / "maze" / "trajectories" / "step-000004.jsonl", [make_trajectory(1, step=3)]
            )
            assert await next_event() == {"type": "run", "run": "maze"}
            write_jsonl(runs_root / "eval" / "new" / "trajectories.jsonl", [make_trajectory(1)])
            assert await next_event() == {"type": "runs"}
    finally:
        await server.close()
    # what the page fetches next shows the new step and the new run
    assert "4 / 3" in viewer.head_fragment("maze")
    assert "eval/new" in viewer.runs_fragment()


async def test_opening_a_run_builds_its_summaries_in_the_background(tmp_path):
    folder = tmp_path / "e"
    write_jsonl(folder / "trajectories.jsonl", [make_trajectory(i, entry="maze-easy") for i in range(30)])
    viewer = Viewer([folder])
    server = await started(viewer, poll_s=5)
    try:
        async with ClientSession() as s, s.get(server.make_url("/events")) as events:
            async with s.get(server.make_url("/f/head?run=e")) as r:
                assert "success" not in await r.text()  # not counted yet: the list never waits for it
            async with s.get(server.make_url("/f/episodes?run=e")) as r:
                assert r.status == 200
            while True:
                line = (await asyncio.wait_for(events.content.readline(), 10)).decode()
                if line.startswith("data:") and json.loads(line[5:])["type"] != "hello":
                    assert json.loads(line[5:]) == {"type": "run", "run": "e"}
                    break
            async with s.get(server.make_url("/f/head?run=e")) as r:
                assert "<b>33.3%</b>" in await r.text()  # every third of 30 succeeded
    finally:
        await server.close()


async def test_a_run_still_being_written_shows_what_it_can(tmp_path):
    folder = tmp_path / "e"
    write_jsonl(folder / "trajectories.jsonl", [make_trajectory(i, entry="maze-easy") for i in range(3)])
    with (folder / "trajectories.jsonl").open("a") as fh:
        fh.write('{"id": "half a line')
    viewer = Viewer([folder])
    assert "Still running: 3 episodes finished so far" in viewer.results_fragment("e")
    html = viewer.episodes_fragment("e", {})
    assert "<b>3</b> episodes" in html and "a line is still being written" in html


async def test_port_in_use_is_a_clear_error(runs_root):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UserError, match=f"port {port} on 127.0.0.1 is in use; pass another --port"):
            await serve(Viewer([runs_root]), "127.0.0.1", port)


async def test_serve_reports_its_address_and_stops(runs_root):
    stop = asyncio.Event()
    urls = []
    task = asyncio.create_task(serve(Viewer([runs_root]), "127.0.0.1", 0, ready=urls.append, stop=stop))
    for _ in range(100):
        if urls:
            break
        await asyncio.sleep(0.05)
    async with ClientSession() as s, s.get(urls[0] + "f/runs") as r:
        assert r.status == 200
    stop.set()
    await asyncio.wait_for(task, 10)


def args(**kw):
    base = dict(runs=[], port=0, host="127.0.0.1", export=None, episodes=50, poll=1.0, no_cache=True)
    return argparse.Namespace(**{**base, **kw})


def test_cli_mistakes(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="nothing to show: .*empty is not a run folder"):
        cli.run(args(runs=[tmp_path / "empty"]))
    with pytest.raises(UserError, match="--port must be between"):
        cli.run(args(runs=[tmp_path], port=70000))
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    assert "loss mask" in parser.format_help() and "--export" in parser.format_help()
