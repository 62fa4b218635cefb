"""The viewer's model: the runs, their caches, and one method per page fragment.

The server calls these methods in worker threads (they read files), and the static export calls
them directly; neither knows how runs are laid out on disk. Request parameters arrive as plain
strings; anything wrong with them raises ``ValueError`` with a sentence the page can show.
"""

from __future__ import annotations

import threading
from html import escape
from pathlib import Path
from typing import Any, Mapping, Sequence
from urllib.parse import quote

from agentgym.eval.metrics import wilson
from agentgym.view import episode_html, episodes_html, eval_tables, pages
from agentgym.view.episode import episode_view
from agentgym.view.episodes import (
    SUMMARY_VERSION,
    EpisodeFilter,
    EpisodeSet,
    SearchCache,
    parse_full,
    summarize_line,
)
from agentgym.view.jsonl_index import IndexRegistry
from agentgym.view.runs import (
    Catalog,
    MetricsCache,
    Run,
    Success,
    eval_overview,
    mtime,
    policy_spec,
    read_json,
    train_overview,
)
from agentgym.view.tokens import Tokenizers, token_view

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500


class Viewer:
    """Everything the page shows about the runs found under ``paths``."""

    def __init__(self, paths: Sequence[Path], *, cache_dir: Path | None = None, page_size: int = PAGE_SIZE):
        self.catalog = Catalog(list(paths))
        self.metrics = MetricsCache()
        self.registry = IndexRegistry(summarize_line, version=SUMMARY_VERSION, cache_dir=cache_dir)
        self.searches = SearchCache()
        self.tokenizers = Tokenizers()
        self.page_size = page_size
        self._signatures: dict[str, tuple] = {}
        self._lock = threading.Lock()

    # ----------------------------------------------------------------- data
    def run(self, run_id: str | None) -> Run:
        """The run with this id (ValueError when there is none)."""
        if not run_id:
            raise ValueError("name a run (run=ID)")
        return self.catalog.get(run_id)

    def episodes(self, run: Run) -> EpisodeSet:
        """The trajectories of a run, across its files."""
        return EpisodeSet(run.trajectory_files(), self.registry, self.searches)

    def overview(self, run: Run) -> dict[str, Any]:
        """What the run list and a run's header say about it."""
        if run.kind == "train":
            return train_overview(run, self.metrics.read(run))
        if run.kind == "eval":
            results = read_json(run.path / "results.json")
            return eval_overview(run, results, None if results else self._tally(run))
        wins, n = self._tally(run)
        success = Success(wins / n, *wilson(wins, n), n, "all episodes") if wins is not None and n else None
        return {
            "envs": self.episodes(run).options()["env"],
            "policy": "",
            "episodes": n,
            "success": success,
            "started": mtime(run.path),
            "live": False,
            "finished": True,
        }

    def _tally(self, run: Run) -> tuple[int | None, int]:
        """(successes, episodes) from the trajectories; successes stay None until every summary is
        built (in the background once the run's page opened), so a list never waits for a big file."""
        indexes = self.episodes(run).indexes
        for index in indexes:
            index.refresh()
        total = sum(len(index) for index in indexes)
        if not all(index.complete for index in indexes):
            return None, total
        return sum(s["success"] for index in indexes for s in index.summaries if s is not None), total

    def envs(self, run: Run) -> list[str]:
        """Environment names for the filter menu, known without reading the trajectories."""
        names = list(self.overview(run).get("envs") or [])
        for name in self.episodes(run).options()["env"]:
            if name not in names:
                names.append(name)
        return names

    # ----------------------------------------------------------------- fragments
    def runs_fragment(self, *, static: bool = False) -> str:
        """The run list."""
        rows = [(run, self.overview(run)) for run in self.ordered_runs()]
        # The live page shows warnings above every view; the report shows them with the runs.
        return pages.run_list(rows, self.catalog.warnings if static else (), static=static)

    def ordered_runs(self) -> list[Run]:
        """Top-level runs in catalog order, each followed by its nested evaluations."""
        runs = self.catalog.runs
        out = []
        for run in runs.values():
            if run.parent is None or run.parent not in runs:
                out.append(run)
                out += [runs[c] for c in run.children if c in runs]
        return out

    def head_fragment(self, run_id: str, *, static: bool = False) -> str:
        """A run's facts (refreshed live)."""
        run = self.run(run_id)
        parent = self.catalog.runs.get(run.parent) if run.parent else None
        return pages.run_header(run, self.overview(run), parent=parent, static=static)

    def run_fragment(self, run_id: str) -> str:
        """A run's page: placeholders for its header, curves and results, the filters and the list."""
        run = self.run(run_id)
        rid, live = escape(quote(run.id, safe="")), escape(run.id)
        out = [f'<div data-fragment="/f/head?run={rid}" data-live="{live}"></div>']
        if run.kind == "train":
            out.append(
                f'<section class="curves" data-fragment="/f/curves?runs={rid}" data-live="{live}"></section>'
            )
        out.append(
            f'<section class="results" data-fragment="/f/results?run={rid}" data-live="{live}"></section>'
        )
        out.append(
            '<section class="episodes-section"><h3>Episodes</h3>'
            + episodes_html.filter_form(self.envs(run), train=run.kind == "train")
            + f'<div id="episode-list" data-live="{live}"></div><div id="episode-detail"></div></section>'
        )
        return "".join(out)

    def curves_fragment(
        self, run_ids: Sequence[str], extra: Sequence[str] = (), *, static: bool = False
    ) -> str:
        """Curves of one or more training runs."""
        runs = [self.run(r) for r in run_ids if r]
        trains = [r for r in runs if r.kind == "train"]
        if not trains:
            return '<p class="muted">Pick one or more training runs to draw their curves.</p>'
        return pages.curves([(r, self.metrics.read(r)) for r in trains], extra, static=static)

    def curves_page(self, run_ids: Sequence[str], extra: Sequence[str]) -> str:
        """The overlay page: a run picker and the curves of the picked runs."""
        chosen = set(run_ids)
        boxes = "".join(
            f'<label class="pick"><input type="checkbox" name="runs" value="{escape(r.id)}"'
            f'{" checked" if r.id in chosen else ""} data-action="overlay-pick"> {escape(r.name)}</label>'
            for r in self.catalog.runs.values()
            if r.kind == "train"
        )
        ids = ",".join(quote(r, safe="") for r in run_ids)
        extra_q = ",".join(quote(e, safe="") for e in extra)
        return (
            "<h2>Training curves</h2>"
            f'<form class="toolbar" id="overlay-picker">{boxes or "no training runs"}</form>'
            f'<section class="curves" data-fragment="/f/curves?runs={escape(ids)}&amp;'
            f'extra={escape(extra_q)}" '
            f'data-live="{escape(" ".join(run_ids))}"></section>'
        )

    def results_fragment(self, run_id: str, *, static: bool = False) -> str:
        """A training run's evaluations, or an eval run's results table."""
        run = self.run(run_id)
        if run.kind == "train":
            children = [self.catalog.runs[c] for c in run.children if c in self.catalog.runs]
            return pages.training_evals(run, self.metrics.read(run), children, static=static)
        if run.kind == "eval":
            results = read_json(run.path / "results.json")
            if results:
                return "<h3>Results</h3>" + eval_tables.eval_table(results)
            ov = self.overview(run)
            s = ov.get("success")
            so_far = (
                f"{ov['episodes']} episodes finished so far"
                if ov["episodes"]
                else "no episode has finished yet"
            )
            if s is not None:
                so_far += f", success {pages.pct(s.rate)} [{pages.pct(s.low)}, {pages.pct(s.high)}]"
            return (
                f'<h3>Results</h3><p class="muted">Still running: {so_far}. '
                "results.json is written at the end.</p>"
            )
        return ""

    def compare_fragment(self, a: str | None, b: str | None) -> str:
        """The compare page: two menus and, once both are chosen, B against A."""
        evals = [r for r in self.catalog.runs.values() if r.kind == "eval"]
        out = ["<h2>Compare two evaluations</h2>", eval_tables.compare_picker(evals, a, b)]
        if not a or not b:
            out.append('<p class="muted">Choose two eval runs (A and B).</p>')
            return "".join(out)
        ra, rb = self.run(a), self.run(b)
        for r in (ra, rb):
            if r.kind != "eval":
                raise ValueError(f"{r.name} is a training run; compare two eval runs")
        out.append(
            eval_tables.compare_table(
                ra, read_json(ra.path / "results.json"), rb, read_json(rb.path / "results.json")
            )
        )
        return "".join(out)

    def compare_table_static(self, a: Run, b: Run) -> str:
        """B against A for the report (no menus)."""
        return eval_tables.compare_table(
            a, read_json(a.path / "results.json"), b, read_json(b.path / "results.json"), static=True
        )

    def episodes_fragment(self, run_id: str, query: Mapping[str, str]) -> str:
        """One page of a run's episodes for the filters, order and offset in ``query``."""
        run = self.run(run_id)
        flt = EpisodeFilter.from_query(query)
        offset = _int(query.get("offset"), "offset", 0)
        limit = min(MAX_PAGE_SIZE, _int(query.get("limit"), "limit", self.page_size) or self.page_size)
        order = query.get("order") or ("newest" if run.kind == "train" else "oldest")
        if order not in ("newest", "oldest"):
            raise ValueError(f"order must be newest or oldest, not {order!r}")
        page = self.episodes(run).page(flt, offset, limit, newest=order == "newest")
        keep = {k: str(v) for k, v in query.items() if k not in ("run", "open") and v}
        return episodes_html.episode_list(page, run.id, keep, train=run.kind == "train")

    def _line(self, run: Run, where: str | None) -> tuple[bytes, int | None]:
        file, _, line = (where or "").partition(":")
        if not file.isdigit() or not line.isdigit():
            raise ValueError("name an episode as FILE:LINE (both numbers)")
        episodes = self.episodes(run)
        index, n = episodes.locate(int(file), int(line))
        return index.read([n])[0], episodes.steps[int(file)]

    def episode_fragment(
        self, run_id: str, where: str | None, *, reveal: bool = False, static: bool = False
    ) -> str:
        """One episode turn by turn (``where``: FILE:LINE)."""
        run = self.run(run_id)
        raw, step = self._line(run, where)
        try:
            data = parse_full(raw)
        except ValueError:
            return (
                f'<p class="error">Line {escape(str(where))} is not valid JSON (a torn or damaged line).</p>'
            )
        if not isinstance(data, dict):
            return f'<p class="error">Line {escape(str(where))} is not a trajectory.</p>'
        return episode_html.episode_detail(
            episode_view(data, reveal=reveal), str(where), static=static, step=step
        )

    def tokens_fragment(self, run_id: str, where: str | None) -> str:
        """The loss mask over one episode's exact tokens."""
        run = self.run(run_id)
        raw, _ = self._line(run, where)
        try:
            data = parse_full(raw)
        except ValueError:
            return '<p class="error">This line is not valid JSON.</p>'
        if not isinstance(data, dict) or not data.get("token_ids"):
            return episode_html.token_html(token_view({}))
        tokenizer, note = self.tokenizers.get(policy_spec(run, self.catalog))
        return episode_html.token_html(token_view(data, tokenizer, note))

    # ----------------------------------------------------------------- live
    def changes(self) -> list[dict[str, Any]]:
        """What changed on disk since the last call: one event per run, plus one when runs came or went."""
        events: list[dict[str, Any]] = []
        if self.catalog.refresh():
            events.append({"type": "runs"})
        with self._lock:
            for run in list(self.catalog.runs.values()):
                sig = _signature(run)
                old = self._signatures.get(run.id)
                self._signatures[run.id] = sig
                if old is not None and old != sig:
                    events.append({"type": "run", "run": run.id})
        return events


def _signature(run: Run) -> tuple:
    """Sizes and times of the files a run's page shows (and how many trajectory files it has)."""
    out: list[Any] = [len(run.trajectory_files()), len(run.children)]
    for path in run.watched_files():
        try:
            st = path.stat()
            out.append((st.st_size, st.st_mtime_ns))
        except OSError:
            out.append(None)
    return tuple(out)


def _int(value: str | None, name: str, default: int) -> int:
    if value in (None, ""):
        return default
    if not str(value).isdigit():
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)
