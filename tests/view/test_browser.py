"""`agentgym view` end to end: a real run folder, the real command, Debian's chromium through Playwright.

A short `agentgym train` of the tiny model with guidance on (its random policy fails every group,
so every group gets a guided re-attempt) and an `agentgym eval` make the run folders; the view
command serves them; chromium opens the page, checks the curves, filters to failed episodes,
opens one, finds its last observation and a guided episode's injected guidance, shows the loss
mask, sees a live update without a reload, and opens the exported report from ``file://``.
Screenshots are kept in ``build/test-artifacts/view/`` (or ``$AGENTGYM_TEST_ARTIFACTS/view``).
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import urlencode

import pytest
import yaml

from agentgym.browser import CHROMIUM_FLAGS, chromium_path
from agentgym.errors import UserError

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("AGENTGYM_TEST_ARTIFACTS") or REPO / "build" / "test-artifacts") / "view"
TRAIN = "tiny-guided"
EVAL = "eval-tiny"


def agentgym(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "agentgym", *args], capture_output=True, text=True, timeout=timeout, cwd=REPO
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def runs(tmp_path_factory, tiny_folder) -> Path:
    from agentgym.cli import COMMANDS

    assert "view" in COMMANDS, "agentgym/cli.py has no `view` row: add it to COMMANDS (agentgym.view.cli)"
    root = tmp_path_factory.mktemp("view-e2e")
    config = {
        "name": TRAIN,
        "run_dir": str(root / "runs" / TRAIN),
        "seed": 3,
        "model": {"policy": f"hf:{tiny_folder}"},
        "envs": [{"id": "maze-medium/v0"}],
        "rollout": {"group_size": 2, "groups_per_step": 2, "max_tokens": 6, "max_turns": 3},
        "trainer": {"steps": 2},
        "pipeline": {"max_staleness": 0},
        "logging": {"tensorboard": False, "plot": False},
        "guidance": {"enabled": True, "providers": ["env_hint"]},
        "progress": {"enabled": True, "weight": 0.5},
        "eval": {"at_end": True, "episodes": 4},
    }
    (root / "train.yaml").write_text(yaml.safe_dump(config))
    agentgym("train", str(root / "train.yaml"), "--no-progress")
    agentgym(
        "eval",
        "--suite",
        str(REPO / "configs" / "suites" / "maze_easy.yaml"),
        "--policy",
        f"hf:{root / 'runs' / TRAIN / 'final'}",
        "--num-tasks",
        "2",
        "-n",
        "2",
        "--max-turns",
        "2",
        "--max-tokens",
        "6",
        "--temperature",
        "1.0",
        "--out",
        str(root / "runs" / EVAL),
        "--no-progress",
    )
    return root / "runs"


@pytest.fixture(scope="module")
def server(runs, tmp_path_factory):
    env = {**os.environ, "AGENTGYM_CACHE": str(tmp_path_factory.mktemp("cache"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agentgym", "view", str(runs), "--port", "0", "--poll", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env=env,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        first = lines.get(timeout=60)
        assert " at http://" in first, first
        yield first.split(" at ")[1].split()[0]
    finally:
        proc.terminate()  # it finishes the request in flight (a tokenizer may be loading), then exits
        try:
            assert proc.wait(timeout=120) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed (scripts/setup/browser.sh)"
    )
    try:
        executable = chromium_path()
    except UserError:
        pytest.skip("Debian's chromium is not installed (scripts/setup/browser.sh)")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)  # the machine may be shared; the first token view imports transformers
    page.outside = []
    page.on("request", lambda r: None if r.url.startswith((server, "data:")) else page.outside.append(r.url))
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    yield page
    assert page.outside == [], "the page asked for something that is not served locally"
    assert page.errors == []
    page.close()


def trajectories(run: Path) -> list[list[dict]]:
    files = (
        sorted((run / "trajectories").glob("*.jsonl"))
        if (run / "trajectories").is_dir()
        else [run / "trajectories.jsonl"]
    )
    return [[json.loads(line) for line in f.read_text().splitlines() if line.strip()] for f in files]


def apply_filters(page, **values):
    form = page.locator("#episode-filters")
    for name in ("success", "guided", "status", "env"):
        form.locator(f"select[name={name}]").select_option(values.get(name, ""))
    form.locator("input[name=q]").fill(values.get("q", ""))
    form.locator("button[type=submit]").click()
    expected = urlencode(values)  # as the page's URLSearchParams writes it
    page.wait_for_function(f"location.hash.endsWith({json.dumps(expected)})")
    page.wait_for_function("!document.getElementById('episode-list').hasAttribute('aria-busy')")


def test_browse_a_real_training_run(page, server, runs):
    page.goto(server)
    page.wait_for_selector("table.runs-table")
    names = page.locator("table.runs-table tbody tr td:nth-child(2)").all_inner_texts()
    assert names == [EVAL, TRAIN, f"{TRAIN}/eval/end-step-000002"]

    page.click(f"a[href='#/run/{TRAIN}']")
    curve = page.wait_for_selector('svg.chart[data-metric="reward/mean"] path.series', state="attached")
    assert curve.get_attribute("d").count("L") == 1  # two steps: a drawn line
    page.wait_for_selector('svg.chart[data-metric="guidance/rate"] path.series', state="attached")

    files = trajectories(runs / TRAIN)
    failed = [(f, n, t) for f, rows in enumerate(files) for n, t in enumerate(rows) if not t["success"]]
    apply_filters(page, success="no")
    rows = page.locator("tr.episode-row")
    assert rows.count() == len(failed) > 0
    assert set(rows.evaluate_all("rs => rs.map(r => r.dataset.success)")) == {"0"}

    rows.nth(1).locator("td a").first.click()
    article = page.wait_for_selector("article.episode")
    f, n = map(int, article.get_attribute("data-where").split(":"))
    traj = files[f][n]
    assert not traj["success"]
    last = traj["turns"][-1]["observation"]["content"]
    shown = page.locator("li.turn").last.locator(".msg.observation pre").last.inner_text()
    assert shown.strip() == last.strip()

    apply_filters(page, guided="yes")
    guided = [
        (f, n, t) for f, rows in enumerate(files) for n, t in enumerate(rows) if t["metadata"].get("guided")
    ]
    assert page.locator("tr.episode-row").count() == len(guided) > 0
    page.locator("tr.episode-row").first.locator("td a").first.click()
    page.wait_for_selector("article.episode .guidance pre")
    f, n = map(int, page.get_attribute("article.episode", "data-where").split(":"))
    text = files[f][n]["metadata"]["guidance"]["text"]
    assert page.inner_text("article.episode .guidance pre").strip() == text.strip()
    assert text.strip() in page.inner_text("article.episode .opening")  # and the model saw it

    page.click("button[data-action=tokens]")
    page.wait_for_selector(".token-view .tokens")
    assert page.locator(".tokens .tok.s").count() == sum(files[f][n]["loss_mask"])
    assert "decoded with the tokenizer" in page.inner_text(".token-view")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "guided-episode.png"), full_page=True)
    assert (ARTIFACTS / "guided-episode.png").stat().st_size > 10_000

    apply_filters(page, q="no move found")
    assert page.locator("tr.episode-row").count() > 0


def test_overlay_curves_from_the_run_list(page, server):
    page.goto(server)
    page.check(f"input[name=pick][value='{TRAIN}']")
    page.click("button[data-action=overlay]")
    page.wait_for_function(f"location.hash === '#/curves?runs={TRAIN}'")
    page.wait_for_selector('svg.chart[data-metric="success/mean"] path.series', state="attached")
    assert page.is_checked(f"#overlay-picker input[value='{TRAIN}']")
    page.select_option("select[data-action=add-metric]", "loss")
    page.wait_for_selector('svg.chart[data-metric="loss"] path.series', state="attached")


def test_eval_tables_and_comparison(page, server, runs):
    page.goto(f"{server}#/run/{EVAL}")
    page.wait_for_selector("table.eval-table")
    heads = page.locator("table.eval-table th").all_inner_texts()
    assert "pass@2" in heads and "success (95% CI)" in heads
    assert page.locator("table.eval-table tr.overall").count() == 1
    page.goto(f"{server}#/compare?a={TRAIN}/eval/end-step-000002&b={EVAL}")
    page.wait_for_selector("table.compare-table tr.overall")
    assert "B − A (95% CI)" in page.inner_text("table.compare-table")
    page.screenshot(path=str(ARTIFACTS / "compare.png"), full_page=True)


def test_exported_report_opens_from_disk(browser, runs, tmp_path):
    agentgym("view", str(runs), "--export", str(tmp_path / "report"), "--episodes", "3")
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(120_000)
    outside = []
    page.on("request", lambda r: None if r.url.startswith(("file://", "data:")) else outside.append(r.url))
    page.goto((tmp_path / "report" / "index.html").as_uri())
    assert page.locator("svg.chart").count() >= 8
    assert page.locator('svg.chart[data-metric="reward/mean"] path.series').count() == 1
    assert page.locator("table.runs-table tbody tr").count() == 3
    assert page.locator("table.eval-table").count() == 2
    assert page.locator("details.report-episode").count() == 3 * 3
    page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=False)
    assert outside == []
    page.close()


def test_the_page_follows_a_run_as_it_is_written(page, server, runs):
    page.goto(f"{server}#/run/{TRAIN}")
    page.wait_for_selector('svg.chart[data-metric="reward/mean"] path.series', state="attached")
    page.wait_for_selector("#episode-list .list-notes")
    page.evaluate("window.notReloaded = true")
    before = page.inner_text("#episode-list .list-notes")
    run = runs / TRAIN
    with (run / "metrics.jsonl").open("a") as fh:  # what the learner appends after step 3
        fh.write(json.dumps({"step": 3, "kind": "train", "reward/mean": 0.5, "success/mean": 0.25}) + "\n")
    rows = trajectories(run)[-1]
    with (run / "trajectories" / "step-000003.jsonl").open("w") as fh:
        fh.write("".join(json.dumps(t) + "\n" for t in rows))
    page.wait_for_function(
        """() => document.querySelector('svg.chart[data-metric="reward/mean"] path.series')
                 .getAttribute('d').split('L').length === 3""",
        timeout=20_000,
    )
    page.wait_for_function(
        f"document.querySelector('#episode-list .list-notes').innerText !== {json.dumps(before)}",
        timeout=20_000,
    )
    assert f"{sum(map(len, trajectories(run)))}" in page.inner_text("#episode-list .list-notes")
    assert page.evaluate("window.notReloaded") is True
