"""The import graph of `remapdsl` and `remapdsl_server`, read from the sources: no circle, and in the language
server only the factory imports the features.

Every import statement counts, wherever it is: at the top of a module, inside a function, or under
`if TYPE_CHECKING:` (a circle a reader or a type checker must follow is a circle, whether or not Python runs it).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.paths import ROOT

PACKAGES = {"remapdsl": ROOT / "remapdsl", "remapdsl_server": ROOT / "server"}
LSP = "remapdsl_server.lsp"
FEATURES = f"{LSP}.features"


def modules(packages: dict[str, Path]) -> dict[str, Path]:
    """Each module's dotted name (a package by its own name), and its source file."""
    out: dict[str, Path] = {}
    for package, root in packages.items():
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join((package, *parts))] = path
    return out


def imported(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules among `known` that the module `name` imports (`from a import b` imports `a.b` when that
    is a module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            targets += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1])
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            # `from a import b` names the module `a.b` when there is one; a package face that gathers
            # its own submodules is not a circle with them.
            submodules = [f"{source}.{alias.name}" for alias in node.names if f"{source}.{alias.name}" in known]
            targets += submodules if len(submodules) == len(node.names) else [source, *submodules]
    out = set()
    for target in targets:
        while target and target not in known:
            target = target.rpartition(".")[0]
        if target and target != name:
            out.add(target)
    return out


def import_graph(packages: dict[str, Path] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules it imports, within `packages`."""
    found = modules(packages)
    return {name: imported(name, path, set(found)) for name, path in found.items()}


def circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of the graph (its first module repeated at the end), or None when it is acyclic."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(name: str) -> list[str] | None:
        path.append(name)
        on_path.add(name)
        for target in sorted(graph[name]):
            if target in on_path:
                return [*path[path.index(target):], target]
            if target not in done and (found := visit(target)) is not None:
                return found
        path.pop()
        on_path.discard(name)
        done.add(name)
        return None

    for name in sorted(graph):
        if name not in done and (found := visit(name)) is not None:
            return found
    return None


def test_the_graph_sees_imports_in_functions_and_for_type_checking() -> None:
    graph = import_graph()
    assert f"{LSP}.app" in graph["remapdsl.cli.lsp"]  # imported inside `run`
    assert f"{LSP}.server" in graph[f"{FEATURES}.hover"]  # imported under TYPE_CHECKING
    assert f"{FEATURES}.training" in graph[f"{LSP}.app"]  # `from .features import training`


def test_circle_finds_a_circle() -> None:
    assert circle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a", "b", "c", "a"]
    assert circle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_packages_have_no_import_circle() -> None:
    found = circle(import_graph())
    assert found is None, "import circle: " + " -> ".join(found or [])


def test_only_the_factory_imports_the_features() -> None:
    graph = import_graph()
    importers = {name for name, targets in graph.items() if not name.startswith(FEATURES)
                 and any(t == FEATURES or t.startswith(f"{FEATURES}.") for t in targets)}
    assert importers == {f"{LSP}.app"}


def test_features_do_not_import_each_other() -> None:
    graph = import_graph()
    features = {name for name in graph if name.startswith(f"{FEATURES}.")}
    assert features, "no feature modules found"
    assert {name: graph[name] & features for name in features if graph[name] & features} == {}
