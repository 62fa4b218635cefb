"""Bug injection: small, realistic mutations of real functions, found with ``ast``.

Each :class:`Mutation` rewrites one single-line expression or removes one statement
inside a function body: comparison and arithmetic operator swaps, off-by-one integer
constants, ``and``/``or`` swaps, a dropped ``not``, a dropped ``if`` branch, or a
changed default argument. Only the mutated span changes, so the bug patch is a minimal
diff of the original file.
"""

from __future__ import annotations

import ast
import copy
import difflib
import random
from dataclasses import dataclass

_CMP = {ast.Lt: ast.LtE, ast.LtE: ast.Lt, ast.Gt: ast.GtE, ast.GtE: ast.Gt, ast.Eq: ast.NotEq,
        ast.NotEq: ast.Eq, ast.In: ast.NotIn, ast.NotIn: ast.In, ast.Is: ast.IsNot, ast.IsNot: ast.Is}
_BIN = {ast.Add: ast.Sub, ast.Sub: ast.Add, ast.BitAnd: ast.BitOr, ast.BitOr: ast.BitAnd,
        ast.FloorDiv: ast.Mult, ast.LShift: ast.RShift, ast.RShift: ast.LShift}
_BOOL = {ast.And: ast.Or, ast.Or: ast.And}


@dataclass(frozen=True)
class Mutation:
    """One injected bug in one file."""

    path: str
    function: str
    kind: str
    lineno: int
    original: str  # the whole original file
    mutated: str  # the whole mutated file
    description: str

    def bug_patch(self) -> str:
        return unified_diff(self.path, self.original, self.mutated)

    def gold_patch(self) -> str:
        return unified_diff(self.path, self.mutated, self.original)


def unified_diff(path: str, before: str, after: str) -> str:
    """A ``git apply``-compatible patch of one file."""
    lines = difflib.unified_diff(before.splitlines(True), after.splitlines(True), f"a/{path}", f"b/{path}", n=3)
    return f"diff --git a/{path} b/{path}\n" + "".join(lines)


def _replace_span(source: str, node: ast.AST, text: str) -> str | None:
    """Replace the single-line source span of ``node`` with ``text`` (offsets are UTF-8 bytes)."""
    if node.lineno != node.end_lineno:
        return None
    lines = source.splitlines(True)
    raw = lines[node.lineno - 1].encode()
    new = raw[: node.col_offset] + text.encode() + raw[node.end_col_offset:]
    lines[node.lineno - 1] = new.decode()
    return "".join(lines)


def _remove_lines(source: str, node: ast.stmt) -> str:
    lines = source.splitlines(True)
    del lines[node.lineno - 1: node.end_lineno]
    return "".join(lines)


class _Finder(ast.NodeVisitor):
    def __init__(self, source: str, path: str):
        self.source = source
        self.path = path
        self.func: list[str] = []
        self.out: list[Mutation] = []

    def add(self, node: ast.AST, kind: str, new_node: ast.AST | None, desc: str, *, remove: bool = False) -> None:
        if not self.func:
            return
        try:
            mutated = _remove_lines(self.source, node) if remove else _replace_span(self.source, node, ast.unparse(new_node))
        except Exception:
            return
        if mutated is None or mutated == self.source:
            return
        try:
            ast.parse(mutated)
        except SyntaxError:
            return
        self.out.append(Mutation(self.path, ".".join(self.func), kind, node.lineno, self.source, mutated, desc))

    def visit_FunctionDef(self, node) -> None:
        self._defaults(node)
        self.func.append(node.name)
        self._dropped_branches(node.body)
        for child in node.body:
            self.visit(child)
        self.func.pop()

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node) -> None:
        self.func.append(node.name)
        for child in node.body:
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.visit(child)
        self.func.pop()
        if not self.func:
            return

    def _defaults(self, fn) -> None:
        self.func.append(fn.name)
        for d in [*fn.args.defaults, *[k for k in fn.args.kw_defaults if k is not None]]:
            if isinstance(d, ast.Constant) and isinstance(d.value, bool):
                self.add(d, "wrong_default", ast.Constant(not d.value), f"default {d.value} -> {not d.value}")
            elif isinstance(d, ast.Constant) and type(d.value) is int:
                self.add(d, "wrong_default", ast.Constant(d.value + 1), f"default {d.value} -> {d.value + 1}")
        self.func.pop()

    def _dropped_branches(self, body: list[ast.stmt]) -> None:
        if len(body) < 2:
            return
        for stmt in body:
            if isinstance(stmt, ast.If) and not stmt.orelse and stmt is not body[-1]:
                self.add(stmt, "dropped_branch", None, f"dropped `if {ast.unparse(stmt.test)[:60]}:` branch",
                         remove=True)

    def generic_visit(self, node) -> None:
        for field in ("body", "orelse", "finalbody"):
            block = getattr(node, field, None)
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt) \
                    and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                self._dropped_branches(block)
        super().generic_visit(node)

    def visit_Compare(self, node) -> None:
        if len(node.ops) == 1 and type(node.ops[0]) in _CMP:
            new = copy.deepcopy(node)
            new.ops = [_CMP[type(node.ops[0])]()]
            self.add(node, "comparison_swap", new, f"{type(node.ops[0]).__name__} -> {type(new.ops[0]).__name__}")
        self.generic_visit(node)

    def visit_BinOp(self, node) -> None:
        if type(node.op) in _BIN and not (isinstance(node.left, ast.Constant) and isinstance(node.left.value, str)):
            new = copy.deepcopy(node)
            new.op = _BIN[type(node.op)]()
            self.add(node, "operator_swap", new, f"{type(node.op).__name__} -> {type(new.op).__name__}")
        for side in (node.left, node.right):
            if isinstance(side, ast.Constant) and type(side.value) is int and 0 <= side.value <= 2:
                self.add(side, "off_by_one", ast.Constant(side.value + 1), f"constant {side.value} -> {side.value + 1}")
        self.generic_visit(node)

    def visit_Subscript(self, node) -> None:
        sl = node.slice
        parts = [sl.lower, sl.upper] if isinstance(sl, ast.Slice) else [sl]
        for p in parts:
            if isinstance(p, ast.Constant) and type(p.value) is int and -2 <= p.value <= 2:
                self.add(p, "off_by_one", ast.Constant(p.value + 1), f"index {p.value} -> {p.value + 1}")
            elif isinstance(p, ast.UnaryOp) and isinstance(p.op, ast.USub) and isinstance(p.operand, ast.Constant) \
                    and type(p.operand.value) is int:
                self.add(p, "off_by_one", ast.Constant(-p.operand.value + 1), f"index -{p.operand.value} -> "
                         f"{-p.operand.value + 1}")
        self.generic_visit(node)

    def visit_BoolOp(self, node) -> None:
        new = copy.deepcopy(node)
        new.op = _BOOL[type(node.op)]()
        self.add(node, "boolean_swap", new, f"{type(node.op).__name__} -> {type(new.op).__name__}")
        self.generic_visit(node)

    def visit_UnaryOp(self, node) -> None:
        if isinstance(node.op, ast.Not):
            self.add(node, "dropped_not", node.operand, "dropped `not`")
        self.generic_visit(node)


def find_mutations(source: str, path: str) -> list[Mutation]:
    """Every candidate mutation of the functions in one file."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    if not source.endswith("\n"):
        return []
    finder = _Finder(source, path)
    finder.visit(tree)
    return finder.out


def sample_mutations(files: dict[str, str], n: int, seed: int = 0) -> list[Mutation]:
    """Up to ``n`` candidates spread over files, functions and kinds (deterministic in ``seed``)."""
    rng = random.Random(seed)
    pool = [m for path in sorted(files) for m in find_mutations(files[path], path)]
    rng.shuffle(pool)
    # round-robin over functions so one long function does not take every slot
    by_func: dict[tuple[str, str], list[Mutation]] = {}
    for m in pool:
        by_func.setdefault((m.path, m.function), []).append(m)
    groups = list(by_func.values())
    rng.shuffle(groups)
    out: list[Mutation] = []
    while groups and len(out) < n:
        for g in list(groups):
            out.append(g.pop())
            if not g:
                groups.remove(g)
            if len(out) >= n:
                break
    return out
