"""The import graph of our packages, read with ast: no cycle anywhere, and the client stays a client."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("cli", "harness", "shared", "customer_service", "accounts_service", "transactions_service")
SERVICES = ("customer_service", "accounts_service", "transactions_service")
# Bounds the depth-first search below: far more modules than the packages hold.
MAX_MODULES = 1000


def module_files() -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by its own name), migrations aside."""
    modules = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.relative_to(ROOT).parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            modules[name] = path
    assert len(modules) < MAX_MODULES
    return modules


def imported_names(tree: ast.AST) -> Iterator[tuple[str, ast.AST]]:
    """Each absolute import in a module, lazy and TYPE_CHECKING ones included, with its node."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module, node
            for alias in node.names:  # `from cli.commands import auth` imports the module cli.commands.auth
                yield f"{node.module}.{alias.name}", node


def import_graph() -> dict[str, set[str]]:
    modules = module_files()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        graph[name] = {target for target, _ in imported_names(tree) if target in modules and target != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph, or None. Iterative depth-first search, so no recursion limit applies."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, pending = [start], [iter(sorted(graph[start]))]
        while pending:
            following = next(pending[-1], None)
            if following is None:
                done.add(path.pop())
                pending.pop()
            elif following in path:
                return path[path.index(following) :] + [following]
            elif following not in done:
                path.append(following)
                pending.append(iter(sorted(graph[following])))
    return None


def test_no_package_module_imports_itself_back_through_another() -> None:
    assert find_cycle(import_graph()) is None


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]


def test_the_client_imports_no_service_and_loads_harness_only_inside_a_command() -> None:
    """cli/ talks HTTP like any client; harness (processes, direct database reads) waits for up/check/bench."""
    for name, path in module_files().items():
        if not name.startswith("cli"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        module_level = {id(node) for node in tree.body}
        for target, node in imported_names(tree):
            assert target.split(".")[0] not in SERVICES, f"{name} imports {target}"
            if target.startswith("harness"):
                assert id(node) not in module_level, f"{name} imports {target} at import time"
