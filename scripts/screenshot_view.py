"""The README's picture of `agentgym view`, taken by the real command in Debian's chromium.

    python scripts/screenshot_view.py RUN_DIR [--out docs/img/view.png]
    python scripts/screenshot_view.py --train     # first train a short SmolLM2 maze run (minutes on CPU)

It serves RUN_DIR with ``agentgym view``, opens the training run's page (curves, evaluations,
episodes), picks a guided episode of the last step when there is one, opens it turn by turn and
saves a full-page screenshot. ``--train`` makes the run it shows: ``configs/maze.yaml``, shortened
to 6 steps, with guidance (env hints at every turn of a re-attempt) and progress rewards on and
an evaluation every 3 steps, written to ``runs/view-demo``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = [
    "name=view-demo",
    "run_dir=runs/{name}",
    "trainer.steps=6",
    "rollout.groups_per_step=3",
    "rollout.group_size=6",
    "eval.episodes=32",
    "eval.every=3",
    "checkpoint.export_final=false",
    "logging.tensorboard=false",
    "guidance.enabled=true",
    "guidance.providers=[env_hint]",
    "guidance.every_turn=true",
    "guidance.samples=2",
    "progress.enabled=true",
    "progress.weight=0.5",
]


def train_demo() -> Path:
    subprocess.run(
        [sys.executable, "-m", "agentgym", "train", "configs/maze.yaml", *DEMO], cwd=ROOT, check=True
    )
    return ROOT / "runs" / "view-demo"


def guided_query(run: Path) -> str:
    """Filters that show the guided episodes of the latest step that has some (else the last step)."""
    files = sorted((run / "trajectories").glob("*.jsonl"))
    for path in reversed(files):
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if any(r.get("metadata", {}).get("guided") for r in rows):
            return f"?step={int(path.stem.split('-')[-1])}&guided=yes"
    return f"?step={int(files[-1].stem.split('-')[-1])}" if files else ""


def _shrink(path: Path) -> None:
    """A 256-colour palette: a page of text and thin lines loses nothing visible, the file a lot."""
    from PIL import Image

    with Image.open(path) as image:
        small = image.convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    small.save(path, optimize=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "runs", nargs="*", type=Path, help="run folders to serve (the first training run is shown)"
    )
    parser.add_argument("--train", action="store_true", help="first train the demo run (runs/view-demo)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "view.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument(
        "--max-height", type=int, default=2000, help="cut the full-page picture at this height"
    )
    args = parser.parse_args()
    runs = list(args.runs)
    if args.train:
        runs.insert(0, train_demo())
    if not runs:
        parser.error("give RUN_DIR or --train")
    from playwright.sync_api import sync_playwright

    from agentgym.browser import CHROMIUM_FLAGS, chromium_path
    from agentgym.view.runs import Catalog

    train = next((r for r in Catalog(runs).runs.values() if r.kind == "train"), None)
    if train is None:
        parser.error("none of these folders holds a training run")
    server = subprocess.Popen(
        [sys.executable, "-m", "agentgym", "view", *map(str, runs), "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        url = server.stdout.readline().split(" at ")[1].split()[0]
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900}, device_scale_factor=1)
            page.goto(f"{url}#/run/{train.id}{guided_query(train.path)}")
            page.wait_for_selector("tr.episode-row")
            page.locator("tr.episode-row").first.locator("td a").first.click()
            page.wait_for_selector("article.episode")
            page.wait_for_timeout(500)
            height = min(args.max_height, page.evaluate("document.body.scrollHeight"))
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(
                path=str(args.out),
                clip={"x": 0, "y": 0, "width": args.width, "height": height},
                full_page=True,
            )
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
    _shrink(args.out)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
