"""Build what sandboxes start from, locally: nothing is ever pulled from a registry.

The chain is the same for both backends:

1. ``sandboxes/build_rootfs.sh``: a minimal Debian rootfs tarball (mmdebstrap from the
   Debian mirror apt is configured with);
2. wheels of the test tools, downloaded on the host (``sandboxes/requirements.txt``);
3. ``sandboxes/install_toolchain.sh`` installs them into the rootfs: inside
   ``docker build --network none`` for docker (after ``docker import`` of the tarball),
   inside a chroot for the bubblewrap rootfs;
4. per repository, a layer with its pristine source (docker) or a directory (bwrap).

Every artefact is named by a hash of the recipes that made it, so changing a recipe
rebuilds, and rerunning is instant. All functions here are blocking: async callers wrap
them in ``asyncio.to_thread``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from agentgym.sandbox.base import SandboxError

log = logging.getLogger(__name__)

BASE_IMAGE = "agentgym-swe-base:bookworm"
TOOLCHAIN_REPO = "agentgym-swe-toolchain"
REPO_IMAGE = "agentgym-swe-repo"


def recipes_dir() -> Path:
    """The ``sandboxes/`` folder of the source tree (or ``$AGENTGYM_SANDBOXES``)."""
    env = os.environ.get("AGENTGYM_SANDBOXES")
    path = Path(env) if env else Path(__file__).resolve().parents[2] / "sandboxes"
    if not (path / "install_toolchain.sh").exists():
        raise SandboxError(f"sandbox recipes not found in {path}; set AGENTGYM_SANDBOXES to the sandboxes/ folder.")
    return path


def swe_home() -> Path:
    """Where downloads, rootfs trees and snapshots live (outside the repository).

    As root this is ``/var/lib/agentgym/swe``: the unprivileged sandbox uid must be able to
    reach the bubblewrap rootfs, which it could not under ``/root``.
    """
    env = os.environ.get("AGENTGYM_SWE_HOME")
    if env:
        path = Path(env)
    elif os.geteuid() == 0:
        path = Path("/var/lib/agentgym/swe")
    else:
        path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "agentgym" / "swe"
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def build_lock(name: str = "build"):
    """A file lock so concurrent processes (tests, CI, pools) build each artefact once."""
    lock = swe_home() / f".{name}.lock"
    with open(lock, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _hash_files(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256(extra.encode())
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _run(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SandboxError(f"`{' '.join(cmd[:4])} ...` failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    return proc


# --- host downloads -----------------------------------------------------------------------

def ensure_wheels() -> Path:
    """Download the toolchain wheels (and pip itself, to install them) once."""
    out = swe_home() / "wheels"
    req = recipes_dir() / "requirements.txt"
    stamp = out / ".requirements"
    if stamp.exists() and stamp.read_text() == req.read_text():
        return out
    with build_lock("wheels"):
        if stamp.exists() and stamp.read_text() == req.read_text():
            return out
        out.mkdir(parents=True, exist_ok=True)
        reqs = [line.strip() for line in req.read_text().splitlines() if line.strip() and not line.startswith("#")]
        _run([sys.executable, "-m", "pip", "download", "--quiet", "--only-binary", ":all:", "--python-version",
              "3.11", "--implementation", "cp", "--dest", str(out), "pip", *reqs])
        (out / "requirements.txt").write_text("\n".join(reqs) + "\n")
        stamp.write_text(req.read_text())
    return out


def ensure_base_tar() -> Path:
    """The Debian base rootfs tarball (built once with mmdebstrap, ~30 s)."""
    script = recipes_dir() / "build_rootfs.sh"
    out = swe_home() / "rootfs" / f"base-{_hash_files([script])}.tar"
    if out.exists():
        return out
    with build_lock("rootfs"):
        if not out.exists():
            out.parent.mkdir(parents=True, exist_ok=True)
            log.info("building the Debian base rootfs %s", out)
            _run(["bash", str(script), str(out)])
    return out


def toolchain_hash() -> str:
    r = recipes_dir()
    wheels = ensure_wheels()
    names = ",".join(sorted(p.name for p in wheels.glob("*.whl")))
    return _hash_files([r / "build_rootfs.sh", r / "install_toolchain.sh", r / "toolchain" / "Dockerfile"], names)


# --- bubblewrap rootfs ----------------------------------------------------------------------

def ensure_rootfs() -> Path:
    """The toolchain rootfs directory for bubblewrap (base tarball + wheels, via chroot)."""
    out = swe_home() / "rootfs" / f"toolchain-{toolchain_hash()}"
    if (out / ".ready").exists():
        return out
    base = ensure_base_tar()
    wheels = ensure_wheels()
    with build_lock("rootfs"):
        if (out / ".ready").exists():
            return out
        if os.geteuid() != 0:
            raise SandboxError("building the bubblewrap rootfs needs root (chroot): run scripts/setup/swe.sh as root.")
        tmp = Path(tempfile.mkdtemp(prefix="toolchain-", dir=out.parent))
        try:
            with tarfile.open(base) as tf:
                tf.extractall(tmp, filter="fully_trusted") if hasattr(tarfile, "data_filter") else tf.extractall(tmp)
            shutil.copytree(wheels, tmp / "tmp" / "wheels")
            shutil.copy(recipes_dir() / "install_toolchain.sh", tmp / "tmp" / "install_toolchain.sh")
            _run(["chroot", str(tmp), "/bin/sh", "/tmp/install_toolchain.sh", "/tmp/wheels"],
                 env={"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"})
            shutil.rmtree(tmp / "tmp" / "wheels")
            (tmp / "tmp" / "install_toolchain.sh").unlink()
            os.chmod(tmp, 0o755)
            (tmp / ".ready").write_text("ok\n")
            if out.exists():
                shutil.rmtree(out)
            tmp.rename(out)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return out


# --- docker images --------------------------------------------------------------------------

def _image_exists(client, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def ensure_docker_base(client) -> str:
    if _image_exists(client, BASE_IMAGE):
        return BASE_IMAGE
    base = ensure_base_tar()
    with build_lock("docker"):
        if not _image_exists(client, BASE_IMAGE):
            repo, tag = BASE_IMAGE.split(":")
            log.info("importing %s", BASE_IMAGE)
            client.api.import_image_from_file(str(base), repository=repo, tag=tag)
    return BASE_IMAGE


def _build(client, context: Path, tag: str, buildargs: dict[str, str]) -> None:
    import docker.errors

    try:
        client.images.build(path=str(context), tag=tag, buildargs=buildargs, network_mode="none",
                            rm=True, forcerm=True, labels={"agentgym.recipe": tag})
    except docker.errors.BuildError as exc:
        tail = "".join(str(x.get("stream", x.get("error", ""))) for x in list(exc.build_log)[-20:])
        raise SandboxError(f"docker build of {tag} failed: {exc.msg}\n{tail}") from exc


def ensure_docker_toolchain(client) -> str:
    tag = f"{TOOLCHAIN_REPO}:{toolchain_hash()}"
    if _image_exists(client, tag):
        return tag
    base = ensure_docker_base(client)
    wheels = ensure_wheels()
    with build_lock("docker"):
        if _image_exists(client, tag):
            return tag
        with tempfile.TemporaryDirectory(prefix="agentgym-build-") as tmp:
            ctx = Path(tmp)
            shutil.copy(recipes_dir() / "toolchain" / "Dockerfile", ctx / "Dockerfile")
            shutil.copy(recipes_dir() / "install_toolchain.sh", ctx / "install_toolchain.sh")
            shutil.copytree(wheels, ctx / "wheels")
            log.info("building %s", tag)
            _build(client, ctx, tag, {"BASE": base})
        client.images.get(tag).tag(TOOLCHAIN_REPO, "latest")
    return tag


def repo_image_tag(key: str, toolchain: str) -> str:
    safe = "".join(c if c.isalnum() or c in "._-" else "-" for c in key.lower())[:80]
    return f"{REPO_IMAGE}:{safe}-{toolchain.rsplit(':', 1)[1][:8]}"


def ensure_docker_repo(client, key: str, source: Path) -> str:
    """An image holding ``source`` (root-only) on top of the toolchain."""
    toolchain = ensure_docker_toolchain(client)
    tag = repo_image_tag(key, toolchain)
    if _image_exists(client, tag):
        return tag
    with build_lock("docker"):
        if _image_exists(client, tag):
            return tag
        with tempfile.TemporaryDirectory(prefix="agentgym-build-") as tmp:
            ctx = Path(tmp)
            shutil.copy(recipes_dir() / "repo" / "Dockerfile", ctx / "Dockerfile")
            shutil.copytree(source, ctx / "src", symlinks=True)
            log.info("building %s", tag)
            _build(client, ctx, tag, {"TOOLCHAIN": toolchain})
    return tag


def main(argv: list[str] | None = None) -> int:
    """``python -m agentgym.sandbox.images [--docker] [--bwrap]``: build the shared images."""
    import argparse

    p = argparse.ArgumentParser(description=main.__doc__)
    p.add_argument("--docker", action="store_true")
    p.add_argument("--bwrap", action="store_true")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.bwrap:
        log.info("bwrap rootfs: %s", ensure_rootfs())
    if args.docker:
        import docker

        log.info("docker toolchain: %s", ensure_docker_toolchain(docker.from_env()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
