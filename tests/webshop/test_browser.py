"""The browser mode against real chromium through Playwright: same pages, same reward, nothing left running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]
pytest.importorskip("playwright")
if not Path("/usr/bin/chromium").exists() and not os.environ.get("CI"):
    pytest.skip("Debian's chromium is not installed: run scripts/setup/browser.sh", allow_module_level=True)

from envs.webshop.browser.env import WebShopBrowserEnv
from envs.webshop.browser.runtime import processes_with
from envs.webshop.env import WebShopEnv

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def envs():
    browser, text = WebShopBrowserEnv(split="test"), WebShopEnv(split="test")
    yield browser, text
    browser.close()


def both(envs, task, actions):
    browser, text = envs
    first_b, _ = browser.reset(options={"task": task})
    first_t, _ = text.reset(options={"task": task})
    assert first_b == first_t
    last = None
    for action in actions:
        b, t = browser.step(action), text.step(action)
        assert b[0] == t[0], action  # the page read from chromium is the engine's page
        assert b[1:4] == t[1:4] and b[4]["invalid_action"] == t[4]["invalid_action"]
        last = b
    return last


def test_purchase_through_chromium_gets_the_text_engines_reward(envs):
    browser, text = envs
    task = text.generate_task(0)
    browser.reset(options={"task": task})
    actions = []
    while not browser.done:
        actions.append(browser.oracle_action())
        browser.step(actions[-1])
    obs, reward, term, _, info = both(envs, task, actions)
    assert term and reward == 1.0 and info["success"]
    assert obs["content"].startswith(
        "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) [SEP] 1.0"
    )


def test_wrong_options_sub_pages_and_invalid_clicks_match_too(envs):
    _browser, text = envs
    task = text.generate_task(3)
    goal = task.reference["goal"]
    product = text.catalog.by_asin[goal["asin"]]
    name, values = next(iter(product.options.items()))
    actions = [
        "click[nothing here]",
        f"search[{goal['query']}]",
        "click[next >]",
        "click[< prev]",
        f"click[{goal['asin'].lower()}]",
        "click[description]",
        "click[< prev]",
        f"click[{values[-1]}]",
        f"click[{values[0]}]",
        f"click[{values[0]}]",  # the chosen value again: the page reloads, as in the original
        "click[features]",
        "click[< prev]",
        "click[buy now]",
    ]
    _obs, reward, term, _, info = both(envs, task, actions)
    assert term and 0.0 < reward <= 1.0
    assert info["purchased"]["options"] == {name: values[0]}


def test_the_server_answers_bad_addresses_with_404(envs):
    import urllib.error
    import urllib.request

    base = envs[0].runtime.server.base_url
    for path in [
        "/nosuchsession",
        f"/{envs[0]._sid}/results?page=abc",
        f"/{envs[0]._sid}/item/NOPE",
        f"/{envs[0]._sid}/item/X/Secrets",
    ]:
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(base + path, timeout=5)
        assert caught.value.code == 404 and b"Traceback" not in caught.value.read()


CHILD = """
import sys, time
from envs.webshop.browser.env import WebShopBrowserEnv
env = WebShopBrowserEnv(split="test")
env.reset(seed=0)
env.step("search[hot sauce]")
print(env.runtime.marker, len(env.runtime.process_ids()), flush=True)
if sys.argv[1] == "hang":
    time.sleep(120)
"""


def _gone_within(marker: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not [p for p in processes_with(marker) if _running(p)]:
            return True
        time.sleep(0.1)
    return False


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


@pytest.mark.parametrize("how", ["exit", "sigkill"])
def test_no_browser_is_left_running(how):
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, "hang" if how == "sigkill" else "exit"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        marker, launched = proc.stdout.readline().split()
        assert int(launched) >= 1 and processes_with(marker)
        if how == "sigkill":
            proc.send_signal(signal.SIGKILL)  # no atexit, no finally: the driver must take chromium down
        proc.wait(timeout=60)
        assert _gone_within(marker, 15), f"chromium outlived its process ({how}): {processes_with(marker)}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
