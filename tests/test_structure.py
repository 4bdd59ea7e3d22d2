"""The package's shape stays readable: no import cycle inside videoaccel/ (module-level and function-level
imports alike; ``if TYPE_CHECKING:`` blocks do not run and do not count), imports at the top of modules but
for a few behind the lazy boundary (videoaccel/__init__.py) and optional extras, and no module outside kernels/
over 250 lines."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "videoaccel"
MAX_LINES = 250
MAX_FUNCTION_IMPORTS = 40


def _modules() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package __init__)."""
    out = {}
    for path in PKG.rglob("*.py"):
        parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            test = child.test if isinstance(child, ast.If) else None
            if isinstance(test, ast.Name) and test.id == "TYPE_CHECKING":
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _defines(tree: ast.Module) -> set[str]:
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                names |= {n.id for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names


def import_graph() -> dict[str, set[str]]:
    """module -> the videoaccel modules it imports. ``from pkg import name`` points at the submodule that
    defines ``name`` (a package may re-export it, eagerly or lazily), else at the package."""
    mods = _modules()
    trees = {name: ast.parse(path.read_text()) for name, (path, _) in mods.items()}
    defines = {name: _defines(tree) for name, tree in trees.items()}

    def home(pkg: str, name: str) -> str:
        if f"{pkg}.{name}" in mods:
            return f"{pkg}.{name}"
        owners = [m for m in mods if m.rpartition(".")[0] == pkg and m != pkg and name in defines[m]]
        return owners[0] if len(owners) == 1 else pkg

    graph = {}
    for name, (_, is_pkg) in mods.items():
        deps = set()
        for node in _runtime_nodes(trees[name]):
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in mods}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_pkg else name.split(".")[:-1]
                    base = base[:len(base) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if target in mods:
                    deps |= {home(target, a.name) if mods[target][1] else target for a in node.names}
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_a_cycle_and_function_level_imports():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    graph = import_graph()
    assert "videoaccel.pipelines" in graph["videoaccel"]  # imported inside __getattr__
    assert "videoaccel.patterns.geometry" in graph["videoaccel.routing.router"]  # through the lazy package


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto units: each subpackage of videoaccel, each top-level module."""
    def unit(m: str) -> str:
        return ".".join(m.split(".")[:2])
    out: dict[str, set[str]] = {}
    for m, deps in graph.items():
        out.setdefault(unit(m), set()).update(unit(d) for d in deps if unit(d) != unit(m))
    return {u: {d for d in deps if d in out} for u, deps in out.items()}


def test_no_import_cycle():
    graph = import_graph()
    assert cycles(graph) == []
    assert cycles(package_graph(graph)) == []  # packages form a DAG too (patterns, routing, pipelines, cli, ...)


def test_no_long_module_outside_kernels():
    long = {str(p.relative_to(PKG.parent)): n for p in PKG.rglob("*.py")
            if "kernels" not in p.relative_to(PKG).parts and (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def function_imports() -> list[str]:
    """``path:line module`` of every runtime import statement inside a function (or lambda) in videoaccel/."""
    found = []
    for path in sorted(PKG.rglob("*.py")):
        tree = ast.parse(path.read_text())
        functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))]
        inside = {id(n) for f in functions for n in _runtime_nodes(f) if n is not f}
        for node in _runtime_nodes(tree):
            if id(node) in inside and isinstance(node, (ast.Import, ast.ImportFrom)):
                names = ", ".join(a.name for a in node.names)
                what = f"import {names}" if isinstance(node, ast.Import) else \
                    f"from {'.' * node.level}{node.module or ''} import {names}"
                found.append(f"{path.relative_to(PKG.parent)}:{node.lineno} {what}")
    return sorted(set(found))


def test_imports_stand_at_the_top_of_modules():
    found = function_imports()
    assert any(f.startswith("videoaccel/__init__.py:") for f in found)  # the checker sees __getattr__'s import
    assert len(found) <= MAX_FUNCTION_IMPORTS, "imports inside functions:\n" + "\n".join(found)


def test_the_lazy_boundary_holds():
    """``import videoaccel`` and the command line's parsing (``--help``, a bad flag) load neither torch nor diffusers."""
    code = ("import sys, videoaccel, videoaccel.cli; videoaccel.cli.build_parser(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'numpy', 'cv2') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PKG.parent, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr
