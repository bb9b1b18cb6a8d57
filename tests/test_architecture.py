"""The layers point one way: the library's import graph (built with ast, module- and function-level imports alike)
has no cycle, only esc_course/lab.py imports the labs, and no lab imports the organisers' tools or the CLI."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RUNNER = "esc_course.lab"  # the one library module allowed to import lab modules

def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, root: Path) -> set[str]:
    """Every module name ``path`` imports anywhere in its body (``from a import b`` gives a and a.b: b may be a
    module), relative imports resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """module -> the modules of ``package`` (under ``root``) it imports; other imports are left out."""
    files = sorted((root / package).rglob("*.py"))
    modules = {module_name(p, root): p for p in files}
    graph = {}
    for mod, path in modules.items():
        targets = set()
        for imported in imported_names(path, root):
            # `from pkg import name`: an edge to pkg.name when it is a module, else to pkg itself
            if imported in modules:
                targets.add(imported)
        # `from esc_course.course import submit` adds both esc_course.course and esc_course.course.submit: keep the
        # package only when nothing below it was named (a name defined in its __init__)
        targets = {t for t in targets if not any(o.startswith(t + ".") for o in targets)}
        graph[mod] = targets - {mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan), each one import cycle or more."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(frozenset(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def lab_importers(root: Path, package: str, allowed: str) -> list[str]:
    """Modules of ``package`` other than ``allowed`` that import ``labs`` or a lab module."""
    return sorted(str(p.relative_to(root)) for p in (root / package).rglob("*.py")
                  if module_name(p, root) != allowed and any(n == "labs" or n.startswith("labs.")
                                                             for n in imported_names(p, root)))


def forbidden_in_labs(root: Path) -> list[str]:
    """``labs/week*.py`` lines importing the organisers' tools (esc_course.course) or the CLI (esc_course.cli)."""
    bad = []
    for path in sorted((root / "labs").glob("week*.py")):
        for name in sorted(imported_names(path, root)):
            if name.split(".")[:2] in (["esc_course", "course"], ["esc_course", "cli"]):
                bad.append(f"{path.name}: {name}")
    return bad


# ---- the project itself

def test_the_library_has_no_import_cycle():
    found = [sorted(c) for c in cycles(import_graph(ROOT, "esc_course"))]
    assert not found, f"import cycles among the library's modules: {found}"


def test_only_the_runner_imports_the_labs():
    assert (ROOT / "esc_course" / "lab.py").is_file()
    assert lab_importers(ROOT, "esc_course", RUNNER) == []


def test_no_lab_imports_the_course_tools_or_the_cli():
    assert sorted((ROOT / "labs").glob("week*.py")), "no labs found"
    assert forbidden_in_labs(ROOT) == []


def test_labs_package_does_not_import_the_cli():
    names = imported_names(ROOT / "labs" / "__init__.py", ROOT)
    assert not any(n == "esc_course.cli" or n.startswith("esc_course.cli.") for n in names)
    assert not any(n.startswith("esc_course.course") for n in names)


def test_the_graph_sees_the_known_imports():
    """The graph is not empty by mistake: edges every reader of the code can see are in it."""
    graph = import_graph(ROOT, "esc_course")
    assert "esc_course.course.bundle" in graph["esc_course.course.verify"]  # module level
    assert "esc_course.course.bundle" in graph["esc_course.course.submit"]
    assert "esc_course.lab" in graph["esc_course.cli"]  # function level (inside cmd_lab_run)
    assert "esc_course.course.submit" not in graph["esc_course.course.verify"]


# ---- the checks fail where they should: hand-made trees

def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_a_hand_made_cycle_is_found(tmp_path):
    root = _tree(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/a.py": "from pkg.b import f\n",
        "pkg/b.py": "def f():\n    from pkg import c  # function level\n",
        "pkg/c.py": "from . import a  # relative\n",
        "pkg/d.py": "import pkg.a\n",  # imports into the cycle, is not part of it
    })
    graph = import_graph(root, "pkg")
    assert graph["pkg.c"] == {"pkg.a"} and graph["pkg.b"] == {"pkg.c"}
    assert cycles(graph) == [frozenset({"pkg.a", "pkg.b", "pkg.c"})]
    del graph["pkg.c"]
    assert cycles(graph) == []


@pytest.mark.parametrize("source", ["import labs\n", "from labs import week01_xor\n",
                                    "def f():\n    import labs.week01_xor\n"])
def test_a_library_module_importing_a_lab_is_found(tmp_path, source):
    root = _tree(tmp_path, {"esc_course/__init__.py": "", "esc_course/lab.py": "import labs\n",
                            "esc_course/course/leaderboard.py": source})
    assert lab_importers(root, "esc_course", RUNNER) == [str(Path("esc_course/course/leaderboard.py"))]


@pytest.mark.parametrize("source", ["from esc_course.course.reevaluate import load_heldout\n",
                                    "from esc_course import cli\n",
                                    "def main():\n    from esc_course.cli import main\n"])
def test_a_lab_importing_the_course_tools_or_the_cli_is_found(tmp_path, source):
    root = _tree(tmp_path, {"labs/__init__.py": "", "labs/week01_xor.py": "from esc_course.data import heldout\n",
                            "labs/week02_gd.py": source})
    bad = forbidden_in_labs(root)
    assert bad and {line.split(":")[0] for line in bad} == {"week02_gd.py"}
