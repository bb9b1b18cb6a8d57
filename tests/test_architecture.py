"""Layers point one way: the import graph of esc_course/ (module- and function-level imports, read with ast) has no
cycle; only esc_course/lab.py imports the labs; no lab imports the organisers' tools (esc_course.course) or the CLI."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNNER = "esc_course.lab"
# Known cycles someone is removing (a frozenset of module names each, with a comment saying who and when); empty now
# that arch's branch split the checkpoint file format from fit's resume policy (checkpoint <-> train is gone).
ALLOWED_CYCLES: set[frozenset[str]] = set()


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, name: str, modules: set[str] | None = None) -> set[str]:
    """Every module ``path`` imports, at any depth of the file. ``from a import b`` is an import of ``a.b`` when
    that is one of ``modules``, else of ``a`` (so a package's lazy exports do not count as imports of it)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if modules is None or sub in modules else base)
    return found


def graph(root: Path, package: str = "esc_course") -> dict[str, set[str]]:
    """module -> the modules of ``package`` it imports."""
    files = {module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    return {name: {m for m in imports_of(path, name, set(files)) if m in files and m != name}
            for name, path in files.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index, low, on, stack, out, counter = {}, {}, set(), [], [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def layer_problems(root: Path) -> list[str]:
    """Imports that point the wrong way."""
    problems = []
    for path in sorted((root / "esc_course").rglob("*.py")):
        name = module_name(path, root)
        wrong = sorted(m for m in imports_of(path, name) if m == "labs" or m.startswith("labs."))
        if wrong and name != RUNNER:
            problems.append(f"{name} imports {', '.join(wrong)} (only {RUNNER} may import the labs)")
        if name.startswith("esc_course.course") and any(m == RUNNER for m in imports_of(path, name)):
            problems.append(f"{name} imports {RUNNER} (the course tools take what they need of a lab, a LabSpec, "
                            f"as an argument)")
    for path in sorted((root / "labs").glob("*.py")):
        name = module_name(path, root)
        wrong = sorted(m for m in imports_of(path, name) if m.split(".")[:2] in (["esc_course", "course"],
                                                                                 ["esc_course", "cli"]))
        if wrong:
            problems.append(f"{name} imports {', '.join(wrong)} (a lab uses the library, not the organisers' "
                            f"tools or the CLI)")
    return problems


def test_the_library_has_no_import_cycle():
    found = [c for c in cycles(graph(ROOT)) if frozenset(c) not in ALLOWED_CYCLES]
    assert not found, f"import cycles in esc_course/: {found}"


def test_imports_point_one_way():
    assert layer_problems(ROOT) == []


def test_the_runner_is_the_module_that_loads_labs():
    source = (ROOT / "esc_course" / "lab.py").read_text(encoding="utf-8")
    assert "importlib.import_module" in source and 'PACKAGE = "labs"' in source


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_a_hand_made_cycle_is_found_function_level_and_relative_imports_included(tmp_path):
    root = _tree(tmp_path, {
        "esc_course/__init__.py": "",
        "esc_course/a.py": "from esc_course import b\n",
        "esc_course/b.py": "def f():\n    from .c import g\n",
        "esc_course/c.py": "def g():\n    import esc_course.a\n",
        "esc_course/d.py": "import esc_course.a\n",
    })
    assert cycles(graph(root)) == [["esc_course.a", "esc_course.b", "esc_course.c"]]


def test_a_wrong_way_import_is_found(tmp_path):
    root = _tree(tmp_path, {
        "esc_course/__init__.py": "",
        "esc_course/lab.py": "import labs\n",
        "esc_course/course/__init__.py": "",
        "esc_course/course/submit.py": "def f():\n    import labs\n",
        "esc_course/course/verify.py": "def f():\n    from esc_course import lab\n",
        "labs/__init__.py": "",
        "labs/week01_x.py": "from esc_course.course.reevaluate import load_heldout\n",
        "labs/week02_y.py": "def main():\n    from esc_course import cli\n",
        "labs/week03_z.py": "from esc_course.data import TensorLoader\n",
    })
    problems = layer_problems(root)
    assert len(problems) == 4, problems
    assert problems[0].startswith("esc_course.course.submit imports labs")
    assert problems[1].startswith("esc_course.course.verify imports esc_course.lab")
    assert "labs.week01_x imports esc_course.course" in problems[2]
    assert "labs.week02_y imports esc_course.cli" in problems[3]
