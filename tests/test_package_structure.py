"""The package stays simple: no import circles (counting imports inside functions too) and no module over 300 lines."""
import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "course_utils"
MAX_LINES = 300


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its text (relative and absolute imports)."""
    modules = {".".join(p.relative_to(package.parent).with_suffix("").parts): p for p in package.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        found = set()
        parts = name.split(".")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = parts[: len(parts) - node.level]  # "__init__" is a part too: "." is its own package
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import circle as the list of modules on it (empty when there is none)."""
    found, state, stack = [], {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return found


def test_no_import_circles():
    assert cycles(import_graph()) == []


def test_the_circle_check_finds_a_circle(tmp_path):
    pkg = tmp_path / "course_utils"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")  # inside a function counts too
    (pkg / "b.py").write_text("from course_utils.a import f\n")
    (pkg / "c.py").write_text("from . import a\n")
    graph = import_graph(pkg)
    assert graph["course_utils.c"] == {"course_utils.a"}
    assert cycles(graph) == [["course_utils.a", "course_utils.b", "course_utils.a"]]


def test_no_module_over_300_lines():
    long = {p.name: n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these modules by concept: {long}"
