"""Which of the model's changes grading accepts: changes to library files only.

Grading never runs the agent's tree; it applies the agent's changes, as a ``git diff``
against the task's snapshot, to a fresh tree. Only changes to library files are kept: a
change to a test file, a ``conftest.py``, pytest configuration, interpreter start-up
files (``sitecustomize``, ``.pth``), byte code, git metadata, or any symlink or submodule
is stripped, and the observation says which and why. Test files and test configuration
always come from the task, as in SWE-bench's harness (a fresh tree, the model's patch to
non-test files, the task's tests on top).

Standard library only: the same rules run on the host and inside the sandbox, in the
grading runner (:mod:`envs.swe.runner`), whose source is sent along with this one.
"""

from __future__ import annotations

from dataclasses import dataclass, field

#: File names pytest reads configuration from.
PYTEST_CONFIG = {"pytest.ini", ".pytest.ini", "pytest.toml", ".pytest.toml", "tox.ini", "setup.cfg",
                 "pyproject.toml", "noxfile.py"}
TEST_DIRS = {"tests", "test", "testing"}
STARTUP_FILES = {"sitecustomize.py", "usercustomize.py"}
GIT_FILES = {".gitattributes", ".gitmodules", ".git"}
SYMLINK, SUBMODULE = "120000", "160000"


def protected_reason(path: str) -> str | None:
    """Why grading does not take a change to ``path`` from the model (None: it does)."""
    parts = path.split("/")
    name = parts[-1]
    if path.startswith("/") or ".." in parts or any(p in GIT_FILES for p in parts):
        return "git metadata and paths outside the repository are not part of a fix"
    if name == "conftest.py":
        return "conftest.py files come from the task"
    if name.startswith("test_") or name.endswith("_test.py") or any(p in TEST_DIRS for p in parts[:-1]):
        return "test files come from the task"
    if name in PYTEST_CONFIG:
        return "test configuration comes from the task"
    if name in STARTUP_FILES or name.endswith(".pth"):
        return "interpreter start-up files are not part of a fix"
    if "__pycache__" in parts or name.endswith((".pyc", ".pyo")):
        return "byte code is not part of a fix"
    return None


@dataclass
class FilteredPatch:
    """The part of a patch that grading applies, and what was left out and why."""

    patch: bytes = b""
    files: list[str] = field(default_factory=list)
    stripped: list[tuple[str, str]] = field(default_factory=list)
    #: Set when nothing can be graded from this patch (it is unreadable or too large).
    error: str = ""

    def summary(self) -> str:
        """One paragraph for the observation: what was not graded, and why."""
        if self.error:
            return self.error
        if not self.stripped:
            return ""
        shown = "; ".join(f"{p} ({why})" for p, why in self.stripped[:8])
        more = f"; and {len(self.stripped) - 8} more" if len(self.stripped) > 8 else ""
        return f"Not graded: changes to {shown}{more}."


def _unquote(text: bytes) -> bytes:
    """A path as git prints it: C-quoted (``"a/t\\303\\251st.py"``) when it has odd bytes."""
    if not text.startswith(b'"'):
        return text
    out = bytearray()
    i, end = 1, len(text) - (1 if text.endswith(b'"') and len(text) > 1 else 0)
    simple = {ord("n"): 10, ord("t"): 9, ord("r"): 13, ord("a"): 7, ord("b"): 8, ord("f"): 12, ord("v"): 11,
              ord("\\"): 92, ord('"'): 34}
    while i < end:
        c = text[i]
        if c == 92 and i + 1 < end:
            nxt = text[i + 1]
            if nxt in simple:
                out.append(simple[nxt])
                i += 2
                continue
            digits = text[i + 1:i + 4]
            if len(digits) == 3 and all(48 <= d <= 55 for d in digits):
                out.append(int(digits, 8) & 0xFF)
                i += 4
                continue
        out.append(c)
        i += 1
    return bytes(out)


def _strip_prefix(path: bytes, prefix: bytes) -> bytes:
    return path.removeprefix(prefix)


def _header_paths(line: bytes) -> list[bytes]:
    """The a/ and b/ paths of a ``diff --git`` line (identical halves when unquoted)."""
    rest = line[len(b"diff --git "):].rstrip(b"\n")
    if rest.startswith(b'"'):
        close = rest.find(b'" ', 1)
        while close != -1 and rest[close - 1:close] == b"\\":
            close = rest.find(b'" ', close + 1)
        if close == -1:
            return []
        return [_unquote(rest[:close + 1]), _unquote(rest[close + 2:])]
    if (len(rest) - 5) % 2 == 0 and len(rest) > 5:
        half = (len(rest) - 5) // 2
        a, b = rest[:half + 2], rest[half + 3:]
        if a.startswith(b"a/") and b.startswith(b"b/") and a[2:] == b[2:]:
            return [a, b]
    parts = rest.split(b" b/", 1)
    return [parts[0], b"b/" + parts[1]] if len(parts) == 2 else []


@dataclass
class _Section:
    raw: bytes
    paths: set[str]
    modes: set[str]
    other: bool  # renames or copies (never made with --no-renames): refused


def _sections(patch: bytes) -> list[_Section]:
    lines = patch.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if line.startswith(b"diff --git ")]
    if lines and (not starts or starts[0] != 0):
        raise ValueError("the patch does not start with a `diff --git` header")
    sections = []
    for n, start in enumerate(starts):
        body = lines[start:starts[n + 1] if n + 1 < len(starts) else len(lines)]
        paths = {_strip_prefix(p, b"a/" if p.startswith(b"a/") else b"b/") for p in _header_paths(body[0])}
        modes: set[str] = set()
        other = False
        for line in body[1:]:
            if line.startswith((b"@@", b"GIT binary patch", b"Binary files")):
                break
            text = line.rstrip(b"\n")
            for key in (b"old mode ", b"new mode ", b"deleted file mode ", b"new file mode "):
                if text.startswith(key):
                    modes.add(text[len(key):].decode("ascii", "replace").strip())
            if text.startswith(b"index ") and text.count(b" ") == 2:
                modes.add(text.rsplit(b" ", 1)[1].decode("ascii", "replace"))
            if text.startswith((b"rename ", b"copy ", b"similarity ", b"dissimilarity ")):
                other = True
            if text.startswith((b"--- ", b"+++ ")):
                path = _unquote(text[4:].split(b"\t", 1)[0] if not text[4:].startswith(b'"') else text[4:])
                if path != b"/dev/null":
                    paths.add(_strip_prefix(path, b"a/" if text.startswith(b"---") else b"b/"))
        if not paths:
            raise ValueError("a section of the patch names no file")
        decoded = {p.decode("utf-8", "surrogateescape") for p in paths}
        sections.append(_Section(b"".join(body), decoded, modes, other))
    return sections


def filter_patch(patch: bytes, max_bytes: int | None = None) -> FilteredPatch:
    """Keep the sections of ``patch`` that change library files (see the module docstring)."""
    if max_bytes is not None and len(patch) > max_bytes:
        return FilteredPatch(error=f"Your changes are larger than {max_bytes // 1_000_000} MB as a diff; "
                                   "nothing was graded.")
    try:
        sections = _sections(patch)
    except ValueError as exc:
        return FilteredPatch(error=f"Your changes could not be read as a patch ({exc}); nothing was graded.")
    kept = FilteredPatch()
    chunks = []
    for sec in sections:
        shown = min(sec.paths)
        reason = None
        if SYMLINK in sec.modes:
            reason = "symlinks are not part of a fix"
        elif SUBMODULE in sec.modes:
            reason = "nested repositories are not part of a fix"
        elif sec.other:
            reason = "renames are not graded"
        else:
            reason = next((r for p in sorted(sec.paths) if (r := protected_reason(p))), None)
        if reason:
            kept.stripped.append((shown, reason))
        else:
            chunks.append(sec.raw)
            kept.files.append(shown)
    kept.patch = b"".join(chunks)
    return kept
