"""Native tool calls end to end: maze grids solved by policies that only answer with tool calls.

1. An OpenAI-compatible server (aiohttp, here in the test) whose answers carry only
   ``tool_calls`` (``content: null``, finish reason ``tool_calls``), reached through
   ``agentgym eval --policy openai:URL#MODEL`` as a user runs it. The server refuses any request
   whose transcript is not valid OpenAI wire format (a tool message must answer a call of the
   assistant message before it, by id).
2. The hf backend with the tiny model and its ChatML template (tools in the system prompt,
   ``<tool_call>`` blocks, a ``tool`` role): sampling is steered to write the solving
   ``<tool_call>`` blocks, while rendering, generation, token bookkeeping and parsing are real.

Both play several moves per reply, as several calls, and must reach the oracle's success rate;
each call is answered by its own tool message carrying its id. (A token-level transcript keeps a
reply as the text that was sampled, so that rendering it gives back the exact tokens; the calls
read from it are in ``turn.tool_calls``.)
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

import pytest

import agentgym
from agentgym.eval import evaluate
from agentgym.rollout import read_jsonl

REPO = Path(__file__).resolve().parents[2]
SUITE = """
name: maze_tools
sampling: {temperature: 0.0, max_tokens: 160}
envs:
  - id: maze-easy/v0
    kwargs: {obs_mode: grid, multi_step: false}
    split: test
    num_tasks: 6
    max_turns: 10
"""
STEPS = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}


def solve(transcript: str) -> list[str]:
    """The moves from A to G on the last grid shown (BFS)."""
    grid: list[str] = []
    for line in reversed(transcript.splitlines()):
        if re.fullmatch(r"[#.AG]{3,}", line.strip()):
            grid.insert(0, line.strip())
        elif grid:
            break
    width = len(grid[0])
    start = next((r, row.index("A")) for r, row in enumerate(grid) if "A" in row)
    goal = next((r, row.index("G")) for r, row in enumerate(grid) if "G" in row)
    previous: dict = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for name, (dr, dc) in STEPS.items():
            r, c = cell[0] + dr, cell[1] + dc
            if 0 <= r < len(grid) and 0 <= c < width and grid[r][c] != "#" and (r, c) not in previous:
                previous[(r, c)] = (cell, name)
                queue.append((r, c))
    moves, cell = [], goal
    while previous[cell] is not None:
        cell, name = previous[cell]
        moves.append(name)
    return moves[::-1]


def check_wire_format(messages: list[dict]) -> str | None:
    """Why ``messages`` are not a valid OpenAI chat transcript, or None."""
    open_calls: set[str] = set()
    for m in messages:
        if m["role"] == "assistant":
            open_calls = {c["id"] for c in m.get("tool_calls") or []}
            if m.get("content") is None and not open_calls:
                return "an assistant message with neither content nor tool calls"
        elif m["role"] == "tool":
            if m.get("tool_call_id") not in open_calls:
                return f"tool message answers {m.get('tool_call_id')!r}, not a call of the assistant before it"
            open_calls.discard(m["tool_call_id"])
        else:
            open_calls = set()
    return None


def serve_tool_caller() -> tuple[str, list[dict], callable]:
    """An OpenAI-compatible server in a thread; returns its URL, its request log and a stop function."""
    from aiohttp import web

    seen: list[dict] = []
    calls = {"n": 0}

    async def chat(request: web.Request) -> web.Response:
        body = await request.json()
        seen.append(body)
        problem = check_wire_format(body["messages"])
        if problem:
            return web.json_response({"error": {"message": problem}}, status=400)
        assert body["tools"][0]["function"]["name"] == "move"
        moves = solve("\n".join(m.get("content") or "" for m in body["messages"]))[:2]
        tool_calls = []
        for move in moves:
            calls["n"] += 1
            tool_calls.append({"id": f"srv-{calls['n']}", "type": "function",
                               "function": {"name": "move", "arguments": json.dumps({"direction": move})}})
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
        return web.json_response({"id": "x", "object": "chat.completion", "model": body["model"],
                                  "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]})

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    async def start() -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", chat)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        return runner

    def run() -> None:
        asyncio.set_event_loop(loop)
        runner = loop.run_until_complete(start())
        ready.set()
        loop.run_forever()
        loop.run_until_complete(runner.cleanup())

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    ready.wait(10)

    def stop() -> None:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)

    return f"http://127.0.0.1:{port}/v1", seen, stop


def assert_one_tool_message_per_call(trajs) -> None:
    """After each reply come its tool messages, one per call, in order, naming the call's id."""
    replies_with_two = 0
    for traj in trajs:
        replies = [i for i, m in enumerate(traj.messages) if m["role"] == "assistant"]
        assert len(replies) == traj.num_turns
        for i, turn in zip(replies, traj.turns):
            ids = [c["id"] for c in turn.tool_calls]
            answers = traj.messages[i + 1 : i + 1 + len(ids)]
            assert ids and [a["role"] for a in answers] == ["tool"] * len(ids)
            assert [a["tool_call_id"] for a in answers] == ids
            replies_with_two += len(ids) == 2
    assert replies_with_two > 0


@pytest.mark.slow
def test_openai_policy_answering_only_with_tool_calls_solves_mazes(tmp_path):
    suite = tmp_path / "maze_tools.yaml"
    suite.write_text(SUITE)
    oracle = evaluate(suite, "scripted:oracle", progress=False)
    url, seen, stop = serve_tool_caller()
    try:
        out = tmp_path / "run"
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        done = subprocess.run([sys.executable, "-m", "agentgym", "eval", "--suite", str(suite), "--policy",
                               f"openai:{url}#toolbot", "--out", str(out), "--no-progress"],
                              capture_output=True, text=True, env=env, timeout=300)
    finally:
        stop()
    assert done.returncode == 0, done.stdout + done.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["overall"]["success_rate"] == oracle.success_rate == 1.0
    assert results["overall"]["failed"] == 0 and seen
    trajs = list(read_jsonl(out / "trajectories.jsonl"))
    assert_one_tool_message_per_call(trajs)
    assert all(check_wire_format(t.messages) is None for t in trajs)  # a text-only policy's transcript
    first_reply = next(m for m in trajs[0].messages if m["role"] == "assistant")
    assert first_reply["content"] is None and first_reply["tool_calls"][0]["id"].startswith("srv-")
    assert trajs[0].turns[0].finish_reason == "tool_calls"


class SteeredHF:
    """Builds the tiny hf policy whose sampling writes the solving ``<tool_call>`` blocks."""

    @staticmethod
    def build(folder: str, monkeypatch):
        import torch

        import agentgym.policy.hf as hf

        targets: dict[int, list[int]] = {}

        class Steered(hf.HFPolicy):
            def _rows(self, request):
                rows = super()._rows(request)
                moves = solve(self.tokenizer.decode(rows[0].prompt, skip_special_tokens=True))[:2]
                reply = "".join(f'<tool_call>{{"name": "move", "arguments": {{"direction": "{m}"}}}}</tool_call>'
                                for m in moves)
                for row in rows:
                    row.seed = len(targets) + 1
                    targets[row.seed] = self.tokenizer(reply, add_special_tokens=False)["input_ids"] + [
                        self.tokenizer.convert_tokens_to_ids("<|im_end|>")]
                return rows

        produced: dict[int, int] = {}

        def steered_sample(logits, temperature, top_p, generators):
            logp = torch.log_softmax(logits, dim=-1)
            chosen = []
            for g in generators:
                key = g.initial_seed()
                at = produced.get(key, 0)
                produced[key] = at + 1
                chosen.append(targets[key][min(at, len(targets[key]) - 1)])
            chosen_t = torch.tensor(chosen, device=logits.device)
            return chosen_t, logp.gather(-1, chosen_t.unsqueeze(1)).squeeze(1)

        monkeypatch.setattr(hf, "sample", steered_sample)
        return Steered(folder)


@pytest.mark.slow
def test_hf_policy_writing_tool_call_blocks_solves_mazes_with_exact_tokens(tmp_path, tiny_folder, monkeypatch):
    suite = tmp_path / "maze_tools.yaml"
    suite.write_text(SUITE)
    oracle = evaluate(suite, "scripted:oracle", progress=False)
    policy = SteeredHF.build(str(tiny_folder), monkeypatch)
    result = evaluate(suite, policy, progress=False)
    assert result.success_rate == oracle.success_rate == 1.0
    trajs = result.trajectories
    assert_one_tool_message_per_call(trajs)
    tools = agentgym.make("maze-easy/v0").tool_schemas
    for traj in trajs:
        assert traj.metadata["token_level"] and not traj.metadata.get("prefix_broken")
        for turn in traj.turns:  # every reply was sampled as written and parsed into calls with ids
            sampled = policy.tokenizer.decode(traj.token_ids[turn.start: turn.end], skip_special_tokens=True)
            assert sampled == turn.action and turn.tool_calls and all(c["id"] for c in turn.tool_calls)
            assert all(traj.loss_mask[turn.start: turn.end])
        # tool messages went through the template's tool role, with loss mask 0
        masked = policy.tokenizer.decode([t for t, m in zip(traj.token_ids, traj.loss_mask) if not m])
        assert "<|im_start|>tool\nMoved" in masked and "<|im_start|>user\nMoved" not in masked
        # the tokens are exactly the template's rendering of what the policy saw, plus its samples
        last_reply = max(i for i, m in enumerate(traj.messages) if m["role"] == "assistant")
        assert traj.token_ids[: traj.turns[-1].start] == policy.renderer.initial(traj.messages[:last_reply], tools)
