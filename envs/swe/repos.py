"""Library source trees from PyPI sdists (which ship their tests).

``prepare_repo("toolz", "1.2.0")`` downloads the sdist once (``pip download --no-deps
--no-binary :all:``) into the SWE cache and unpacks a clean tree: no byte code, no
egg-info. Tasks name their repository by package and version only; the source itself
is never stored in this repository.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from agentgym.errors import UserError
from agentgym.sandbox.images import build_lock, swe_home

#: Turns the pristine tree into a one-commit git repository inside the sandbox.
GIT_INIT = "git init -q && git add -A && git commit -qm 'initial import' && git tag base"
_SKIP = re.compile(r"(^|/)(__pycache__|[^/]+\.egg-info|\.tox|\.eggs|build|dist)(/|$)|\.py[co]$")


@dataclass(frozen=True)
class Repo:
    """An unpacked sdist: where it is and how its tests run."""

    package: str
    version: str
    path: Path
    pythonpath: str  # "src" for src layouts, "." otherwise
    test_files: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.package}-{self.version}"

    def test_cmd(self, files: list[str] | tuple[str, ...] | None = None) -> str:
        return pytest_command(self.pythonpath, files if files is not None else self.test_files)


def pytest_command(pythonpath: str, files: list[str] | tuple[str, ...]) -> str:
    """The pytest command graded runs use.

    ``-B`` writes no bytecode: ``-I`` ignores PYTHONDONTWRITEBYTECODE, and a stale ``.pyc`` of
    the buggy source (same size, same mtime second as a one-character fix) would be run instead.
    ``python3 -I`` keeps the work dir off ``sys.path`` until pytest itself is imported
    (so a planted ``pytest.py`` cannot shadow it); ``-o addopts=`` ignores a project's
    own options (coverage plugins that are not installed); ``-rA`` lists every outcome.
    """
    joined = " ".join(files)
    return (f"python3 -I -B -m pytest -p no:cacheprovider --rootdir=/work -o addopts= -o pythonpath=/work/{pythonpath} "
            f"-rA -q --tb=short --color=no {joined}").replace("/work/.", "/work")


def normalize(package: str) -> str:
    return re.sub(r"[-_.]+", "-", package).lower()


def parse_requirement(text: str) -> tuple[str, str]:
    """``"toolz==1.2.0"`` -> ``("toolz", "1.2.0")``; a version is required."""
    m = re.fullmatch(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*==\s*([A-Za-z0-9.+!_-]+)\s*", text)
    if not m:
        raise UserError(f"{text!r} is not PACKAGE==VERSION (for example toolz==1.2.0).")
    return m.group(1), m.group(2)


def download_sdist(package: str, version: str) -> Path:
    """The sdist archive, from the cache or PyPI."""
    dest = swe_home() / "sdists"
    dest.mkdir(parents=True, exist_ok=True)
    stem = normalize(package).replace("-", "[-_.]")
    pattern = re.compile(rf"^{stem}-{re.escape(version)}\.(tar\.gz|zip|tar\.bz2)$", re.I)
    found = [p for p in dest.iterdir() if pattern.match(p.name)]
    if found:
        return found[0]
    proc = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                           "--dest", str(dest), f"{package}=={version}"], capture_output=True, text=True)
    found = [p for p in dest.iterdir() if pattern.match(p.name)]
    if proc.returncode != 0 or not found:
        raise UserError(f"could not download the sdist of {package}=={version} from PyPI: "
                        f"{(proc.stderr or proc.stdout).strip().splitlines()[-1:] or 'no sdist'}")
    return found[0]


def _extract(archive: Path, into: Path) -> None:
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(into)
    else:
        with tarfile.open(archive) as tf:
            tf.extractall(into, filter="data")


def find_test_files(root: Path) -> list[str]:
    files = []
    for p in sorted(root.rglob("*.py")):
        rel = p.relative_to(root).as_posix()
        name = p.name
        if name.startswith("test_") or name.endswith("_test.py"):
            files.append(rel)
    return files


def is_test_path(rel: str) -> bool:
    """Tests, test configuration and the other files grading never takes from a model
    (:func:`envs.swe.patchrules.protected_reason`): mutations never touch them either."""
    from envs.swe.patchrules import protected_reason

    return protected_reason(rel) is not None


def prepare_repo(package: str, version: str) -> Repo:
    """Download and unpack ``package==version`` (cached)."""
    dest = swe_home() / "repos" / f"{normalize(package)}-{version}"
    if not (dest.parent / f"{dest.name}.ready").exists():
        archive = download_sdist(package, version)
        with build_lock("repos"):
            if not (dest.parent / f"{dest.name}.ready").exists():
                dest.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
                    _extract(archive, Path(tmp))
                    tops = [p for p in Path(tmp).iterdir()]
                    top = tops[0] if len(tops) == 1 and tops[0].is_dir() else Path(tmp)
                    for p in sorted(top.rglob("*"), reverse=True):
                        rel = p.relative_to(top).as_posix()
                        if _SKIP.search(rel) or p.is_symlink():
                            if p.is_dir() and not p.is_symlink():
                                shutil.rmtree(p)
                            else:
                                p.unlink()
                    if dest.exists():
                        shutil.rmtree(dest)
                    top.rename(dest)
                (dest.parent / f"{dest.name}.ready").write_text("ok\n")
    tests = find_test_files(dest)
    if not tests:
        raise UserError(f"the sdist of {package}=={version} ships no tests (test_*.py); pick another package.")
    pythonpath = "src" if (dest / "src").is_dir() else "."
    return Repo(normalize(package), version, dest, pythonpath, tuple(tests))
