"""The grading runner: runs *inside* the sandbox, as ``python3 -I -S -c <source>``.

Standard library only (its source is sent after those of :mod:`envs.swe.patchrules` and
:mod:`envs.swe.outcomes`), and it never imports pytest nor the code under test: it is the
trusted parent of the one process that does. It reads one JSON line on stdin (the host's per-grading key, the pytest command, the
patch or the instruction to take it from the work dir), then:

1. makes itself non-dumpable (the agent's uid cannot read its memory or open its file
   descriptors through ``/proc``); under docker it runs as root and everything else as the
   unprivileged ``agent``; under bubblewrap seccomp also refuses ``ptrace``;
2. with ``extract``: kills every agent process, takes the agent's changes as a diff
   against the snapshot (:data:`EXTRACT_SCRIPT`, run as the agent) and keeps only the
   library changes (:func:`filter_patch`); else it filters the patch it was given;
3. with ``reset``: restores the work dir from the snapshot and empties /tmp, /dev/shm,
   the message queues and SysV IPC: nothing the agent wrote is left;
4. applies the kept patch, then the task's hidden test patch, with ``git apply``;
5. writes a canary test module with one test that must pass and one that must fail;
6. runs pytest in a child with a collector plugin (:mod:`envs.swe.outcomes`) that reports
   every test over a private pipe: the outcome of each phase taken from the exception the
   test itself raised (``call.excinfo``, after pytest's own plugins have filled it in)
   beside the outcome pytest reports, and a final record with pytest's exit status. The child's
   stdout/stderr are only kept (bounded) for the failure details shown to the model;
7. prints one line ``AGENTGYM-VERDICT <hmac> <json>``, signed with the key, so nothing the
   child writes can pass for a verdict.

The host (:mod:`envs.swe.grading`) turns the verdict into a reward; the checks that call
for "suspected tampering" are listed in :func:`envs.swe.outcomes.verdict`.
"""

import base64
import hashlib
import hmac
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import time

try:  # on the host; in the sandbox the rules' and outcomes' source come first in the same program
    from envs.swe.outcomes import CANARY, CHILD, verdict
    from envs.swe.patchrules import FilteredPatch, filter_patch
except ImportError:  # pragma: no cover - only inside the sandbox
    pass

MARK = "AGENTGYM-VERDICT"
CHILD_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/tmp",
             "LANG": "C.UTF-8", "USER": "agent", "PYTHONDONTWRITEBYTECODE": "1"}
DROP = ["setpriv", "--reuid=agent", "--regid=agent", "--clear-groups", "--inh-caps=-all", "--"]
GIT_ENV = {"GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_TERMINAL_PROMPT": "0"}
REPORT_LIMIT = 16_000_000

#: ``$1`` work dir, ``$2`` byte limit, ``$3`` snapshot dir, ``$4`` "base64" to encode. The
#: agent's changes as one ``git diff`` against the snapshot, made with the snapshot's own
#: read-only git directory, a scratch index read from the snapshot's tree and a scratch object
#: store, and no git configuration of the agent's: what the agent did to its ``.git``
#: (history, hooks, filters, attributes) does not matter. The index is built afresh, with no
#: stat data, so every file is hashed: a copy of the snapshot's index would trust mtime and
#: size, and a same-size edit made in the second the snapshot was taken (or given the
#: snapshot's mtime by ``touch``) would be dropped from the diff.
EXTRACT_SCRIPT = r"""set -e
work="$1"; max="$2"; snap="$3"
t=$(mktemp -d /tmp/.agentgym-diff.XXXXXX)
trap 'rm -rf "$t"' EXIT
mkdir "$t/objects"
export GIT_DIR="$snap/.git" GIT_WORK_TREE="$work" GIT_INDEX_FILE="$t/index" GIT_OBJECT_DIRECTORY="$t/objects"
export GIT_ALTERNATE_OBJECT_DIRECTORIES="$snap/.git/objects" GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null
export HOME="$t" XDG_CONFIG_HOME="$t" GIT_ATTR_NOSYSTEM=1 GIT_OPTIONAL_LOCKS=0 GIT_TERMINAL_PROMPT=0
export GIT_CONFIG_COUNT=4 GIT_CONFIG_KEY_0=core.hooksPath GIT_CONFIG_VALUE_0=/dev/null
export GIT_CONFIG_KEY_1=core.fsmonitor GIT_CONFIG_VALUE_1=false GIT_CONFIG_KEY_2=core.checkStat
export GIT_CONFIG_VALUE_2=minimal GIT_CONFIG_KEY_3=core.trustctime GIT_CONFIG_VALUE_3=false
git read-tree HEAD
git add -A --ignore-errors >/dev/null 2>&1 || true
if [ "$4" = base64 ]; then
  git diff --cached --binary --no-renames --full-index --no-color --no-ext-diff --no-textconv HEAD \
    | head -c $((max + 1)) | base64 -w0
else
  git diff --cached --binary --no-renames --full-index --no-color --no-ext-diff --no-textconv HEAD \
    | head -c $((max + 1))
fi
"""
#: Run as the agent (under docker, by root through setpriv): stop and kill every other
#: process of the agent's uid, until none is left. Builtins only: under a full pids limit
#: nothing new can start.
KILL_AGENT = "for ((i = 0; i < 100; i++)); do kill -STOP -1 2>/dev/null; kill -KILL -1 2>/dev/null || exit 0; done"


class Tail:
    """Keep the head and tail of a stream, at most ``limit`` bytes."""

    def __init__(self, limit):
        self.limit, self.head, self.tail, self.total = limit, bytearray(), bytearray(), 0

    def feed(self, chunk):
        self.total += len(chunk)
        room = self.limit // 2 - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        self.tail += chunk
        del self.tail[:max(0, len(self.tail) - self.limit // 2)]

    def text(self):
        cut = self.total - len(self.head) - len(self.tail)
        mid = f"\n[... {cut} bytes truncated ...]\n" if cut else ""
        return self.head.decode("utf-8", "replace") + mid + self.tail.decode("utf-8", "replace")


def _run_quiet(argv, cwd, env, timeout):
    try:
        proc = subprocess.run(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=timeout, check=False)
        return proc.returncode, (proc.stdout + proc.stderr)[-4000:].decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return 124, "timed out"


def _non_dumpable():
    try:
        import ctypes

        ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
    except (ImportError, OSError, AttributeError):  # no ctypes or no prctl: root (docker) still guards us
        return


def _collect(proc, report_fd, deadline, max_output):
    """Read the child's output (bounded) and its records until it ends or the deadline."""
    sel = selectors.DefaultSelector()
    out, report = Tail(max_output), bytearray()
    flooded = False
    for f in (proc.stdout.fileno(), proc.stderr.fileno(), report_fd):
        os.set_blocking(f, False)
        sel.register(f, selectors.EVENT_READ)
    timed_out, ended_at = False, None
    while sel.get_map():
        now = time.monotonic()
        if proc.poll() is not None and ended_at is None:
            ended_at = now
        if ended_at is not None and now - ended_at > 0.5:  # descendants may hold the pipes open
            break
        if now > deadline:
            timed_out = True
            break
        for key, _ in sel.select(min(0.2, max(deadline - now, 0.01))):
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not chunk:
                sel.unregister(key.fd)
            elif key.fd == report_fd:
                if len(report) + len(chunk) > REPORT_LIMIT:
                    flooded = True
                else:
                    report += chunk
            else:
                out.feed(chunk)
    sel.close()
    return out, bytes(report), timed_out, flooded


def main():
    cfg = json.loads(sys.stdin.readline())
    cfg["deadline"] = time.monotonic() + cfg["timeout"]
    key = cfg.pop("key").encode()
    _non_dumpable()
    try:
        result = grade(cfg)
    except Exception as exc:  # reported, never raised: the host scores a failed grading as 0
        result = {"flags": [], "error": f"the grading runner failed: {type(exc).__name__}: {exc}"}
    body = json.dumps(result, sort_keys=True)
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    sys.stdout.write(f"{MARK} {mac} {body}\n")
    sys.stdout.flush()


def _clear(path, keep=()):
    """Delete everything inside ``path`` (not ``path`` itself), whatever its permissions."""
    try:
        entries = list(os.scandir(path))
    except OSError:
        return
    for entry in entries:
        if entry.path in keep:
            continue
        try:
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, onerror=_force)
            else:
                os.unlink(entry.path)
        except OSError:
            pass


def _force(func, path, _exc):
    """rmtree's error handler: make the parent writable and searchable, then retry."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, onerror=lambda *a: None)
        else:
            func(path)
    except OSError:
        pass


def reset_inside(work, snap, root, env):
    """Back to the snapshot from inside the sandbox: the same as the sandbox's own reset."""
    drop = DROP if root else []
    if root:
        _run_quiet([*DROP, "bash", "-c", KILL_AGENT], "/", env, 30)
    for scratch in (work, "/tmp", "/dev/shm", "/dev/mqueue"):
        _clear(scratch)
    if os.listdir(work):
        raise RuntimeError("the work dir could not be emptied")
    _run_quiet([*drop, "ipcrm", "--all"], "/", env, 30)
    code, text = _run_quiet(["cp", "-a", snap + "/.", work + "/"], "/", env, 120)
    if code != 0:
        raise RuntimeError("restoring the snapshot failed: " + text[-500:])
    if root:
        _run_quiet(["chown", "-R", "agent:agent", work], "/", env, 120)


def take_patch(cfg, root, env):
    """The filtered patch: taken from the work dir (``extract``) or given by the host."""
    limit = cfg.get("max_patch", 2_000_000)
    if not cfg.get("extract"):
        return filter_patch(base64.b64decode(cfg.get("patch") or ""), limit)
    drop = DROP if root else []
    if root:
        _run_quiet([*DROP, "bash", "-c", KILL_AGENT], "/", env, 30)
    try:
        proc = subprocess.run([*drop, "bash", "-c", EXTRACT_SCRIPT, "extract", cfg["workdir"], str(limit),
                               cfg["snapshot"], "raw"], cwd="/", env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=max(cfg["deadline"] - time.monotonic(), 1), check=False)
    except subprocess.TimeoutExpired:
        return FilteredPatch(error="Your changes could not be collected (it timed out); nothing was graded.")
    if proc.returncode != 0:
        why = proc.stderr[-300:].decode("utf-8", "replace").strip() or f"exit code {proc.returncode}"
        return FilteredPatch(error=f"Your changes could not be collected ({why}); nothing was graded.")
    return filter_patch(proc.stdout, limit)


def grade(cfg):
    """Take the patch, restore, apply, run pytest in a child; the verdict (see the module docstring)."""
    root = os.geteuid() == 0
    drop = DROP if root else []
    work = cfg["workdir"]
    env = dict(CHILD_ENV)
    patch = take_patch(cfg, root, env)
    result = {"flags": [], "apply_error": "", "timed_out": False, "output": "", "stripped": patch.stripped,
              "graded_files": patch.files, "patch_error": patch.error}
    if patch.error:
        return result
    if cfg.get("reset"):
        reset_inside(work, cfg["snapshot"], root, env)
    patch_dir = tempfile.mkdtemp(prefix="agentgym-grade-")
    os.chmod(patch_dir, 0o755)
    todo = [("your changes", patch.patch)]
    if cfg.get("test_patch"):
        todo.append(("the task's tests", base64.b64decode(cfg["test_patch"])))
    for i, (name, data) in enumerate(todo):
        if not data:
            continue
        path = os.path.join(patch_dir, f"{i}.patch")
        with open(path, "wb") as fh:
            fh.write(data)
        os.chmod(path, 0o644)
        code, text = _run_quiet([*drop, "git", "apply", "--whitespace=nowarn", path], work, {**env, **GIT_ENV}, 120)
        if code != 0:
            result["apply_error"] = f"{name} did not apply: {text.strip()[-1500:]}"
            return result
    canary_tag = ""
    args = list(cfg["pytest_args"])
    if cfg.get("canary", True):
        canary_tag = "agentgym_canary_" + secrets.token_hex(6)
        canary = os.path.join(work, f"test_{canary_tag}.py")
        with open(canary, "w") as fh:
            fh.write(CANARY.format(tag=canary_tag))
        os.chmod(canary, 0o644)
        args = [canary] + args
    r, w = os.pipe()
    start = time.monotonic()
    proc = subprocess.Popen([*drop, *cfg["python"], "-c", CHILD, *args], cwd=work,
                            env={**env, "AGENTGYM_REPORT_FD": str(w)}, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, pass_fds=(w,), start_new_session=True)
    os.close(w)
    out, report, timed_out, flooded = _collect(proc, r, cfg.get("deadline", start + cfg["timeout"]), cfg["max_output"])
    if timed_out or proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
    code = proc.wait()
    if root:  # end the stragglers (setsid children of the tests) before the next command
        _run_quiet([*DROP, "bash", "-c", KILL_AGENT], "/", env, 30)
    if canary_tag:
        try:
            os.unlink(os.path.join(work, f"test_{canary_tag}.py"))
        except OSError:
            pass
    records = []
    for line in report.decode("utf-8", "replace").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            records.append(None)
    result.update(verdict(records, code, cfg["tests"], canary_tag, timed_out))
    if flooded:
        result["flags"].append("the report channel was flooded")
    result.update(timed_out=timed_out, exit_code=code, output=out.text(),
                  duration=round(time.monotonic() - start, 3))
    return result


if __name__ == "__main__":
    main()
