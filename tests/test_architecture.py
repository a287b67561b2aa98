"""The shape of the code: no import circles among the project's own modules.

What counts as an import (read with `ast`, nothing is imported):
- every `import X` and `from X import Y` statement anywhere in a module: at module level AND
  inside functions, methods and `if` blocks. A function-level import still runs the other
  module when called, and is the usual way to hide a circle, so it counts the same;
- `from P import Y` is an edge to the module P.Y when that is one of ours (a submodule), else to
  P itself; relative imports are resolved against the importing module;
- modules: every .py file under saml_core/, dashboard/ and app_pages/, and app.py; a package is
  its __init__.py. Imports of other packages (torch, streamlit, ...) are not followed.
Not counted: `importlib.import_module` with a name computed at run time (the model registry's
lazy builders load model files that way on purpose: building a model imports torch, naming
one does not).
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("saml_core", "dashboard", "app_pages")
SCRIPTS = ("app.py",)


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    """{dotted module name: file} of the project's own code."""
    mods = {}
    for top in PACKAGES:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = path
    for script in SCRIPTS:
        if (root / script).exists():
            mods[Path(script).stem] = root / script
    return mods


def _imported(node: ast.AST, module: str, is_package: bool, mods: dict) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: from .x import y
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[:len(base) - (node.level - 1)]
        package = ".".join(base + ([node.module] if node.module else []))
    else:
        package = node.module
    out = []
    for alias in node.names:
        sub = f"{package}.{alias.name}"
        out.append(sub if sub in mods else package)
    return out


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """{module: the project's modules it imports (module level and function level)}."""
    mods = project_modules(root)
    graph = {}
    for name, path in mods.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                targets |= {t for t in _imported(node, name, path.name == "__init__.py", mods)
                            if t in mods and t != name}
        graph[name] = targets
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One closed path (a -> b -> ... -> a) per group of modules that import each other
    (strongly connected components, Tarjan), shortest first."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted((_cycle_in(graph, g) for g in groups), key=len)


def _cycle_in(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest cycle through the group's first module (breadth-first), for the message."""
    start = min(group)
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & group):
                if w == start:
                    return paths[v] + [start]
                if w not in paths:
                    paths[w] = paths[v] + [w]
                    nxt.append(w)
        frontier = nxt
    return sorted(group)


def test_the_project_has_no_import_circles():
    graph = import_graph()
    assert len(graph) > 50 and "saml_core.train" in graph and "app" in graph  # it read the real tree
    found = circles(graph)
    assert not found, "import circles:\n" + "\n".join(" -> ".join(c) for c in found)


def test_the_walker_finds_a_planted_circle_through_a_function_level_import(tmp_path):
    pkg = tmp_path / "saml_core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from saml_core.sub import b\n")
    (pkg / "sub" / "b.py").write_text("def f():\n    from ..c import thing\n")
    (pkg / "c.py").write_text("import saml_core.a\nthing = 1\n")
    (pkg / "d.py").write_text("from saml_core import a, c\n")  # imports the circle, is not in it
    for top in ("dashboard", "app_pages"):
        (tmp_path / top).mkdir()
    found = circles(import_graph(tmp_path))
    assert found == [["saml_core.a", "saml_core.sub.b", "saml_core.c", "saml_core.a"]]



# --- No page or dashboard module decides by a registered name ------------------------------------
# What a model, dataset or preset is (the reference, the focus, what it exposes, its badge) lives
# on its registry entry; a page that compares an id, a preset name or a dataset kind with a string
# goes wrong the day one is added or renamed.
UI_DIRS = ("app_pages", "dashboard")
UI_SCRIPTS = ("app.py",)


def registered_names() -> set[str]:
    """Every registered model id, preset name, dataset name and dataset kind."""
    from saml_core.config import PRESETS
    from saml_core.data import registry as datasets
    from saml_core.models import registry as models

    names = set(models.ids()) | set(PRESETS)
    for e in datasets.entries():
        names |= {e.name, e.kind}
    return names


def _strings(node) -> list[ast.Constant]:
    """The string constants of an expression that is a literal or a tuple/list/set of them."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return [c for elt in node.elts for c in _strings(elt)]
    return []


def names_deciding(source: str, names: set[str]) -> list[tuple[int, str, str]]:
    """(line, name, where) for each registered name a module compares with (==, !=, in, not in),
    keys a dict literal or a lookup by (`{"synthetic": ...}`, `x.get("bst")`, `x["quick"]`), or
    uses as a default (a parameter's default, a class field's default)."""
    found = []

    def flag(nodes, where):
        found.extend((c.lineno, c.value, where) for c in nodes if c.value in names)

    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            for operand in [node.left, *node.comparators]:
                flag(_strings(operand), "comparison")
        elif isinstance(node, ast.Dict):
            for key in node.keys:
                if key is not None:
                    flag(_strings(key), "dict key")
        elif isinstance(node, ast.Subscript):
            flag(_strings(node.slice), "lookup")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("get", "pop", "setdefault") and node.args):
            flag(_strings(node.args[0]), "lookup")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            flag([c for d in [*node.args.defaults, *node.args.kw_defaults] if d is not None
                  for c in _strings(d)], "default")
        elif isinstance(node, ast.ClassDef):
            for stmt in node.body:
                if isinstance(stmt, (ast.AnnAssign, ast.Assign)) and stmt.value is not None:
                    flag(_strings(stmt.value), "default")
    return found


def test_no_page_or_dashboard_module_decides_by_a_registered_name():
    names = registered_names()
    assert {"saml", "bst", "quick", "synthetic", "taobao-sample"} <= names  # it read the registries
    files = [p for d in UI_DIRS for p in sorted((ROOT / d).rglob("*.py"))] + [ROOT / s for s in UI_SCRIPTS]
    found = [f"{p.relative_to(ROOT)}:{line}: {name!r} ({where})"
             for p in files for line, name, where in names_deciding(p.read_text(encoding="utf-8"), names)]
    assert not found, "ask the registry instead of naming:\n" + "\n".join(found)


def test_the_name_check_catches_each_way_of_deciding_by_a_name():
    names = {"saml", "bst", "quick", "synthetic"}
    planted = '''
focus = a if model == "saml" else b
keep = [m for m in runs if m in ("bst", "other")]
icon = {"synthetic": 1}.get(kind)
fallback = icons.get("synthetic")
def chart(df, focus="saml"):
    return df
class Form:
    preset: str = "quick"
fine = draw(symbol="star", title="saml", label="BST")  # arguments and labels are not decisions
'''
    found = names_deciding(planted, names)
    assert sorted((line, name) for line, name, _ in found) == [
        (2, "saml"), (3, "bst"), (4, "synthetic"), (5, "synthetic"), (6, "saml"), (9, "quick")]


# --- One name, one module ---------------------------------------------------------------------
def same_basenames(root: Path = ROOT) -> dict[str, list[str]]:
    """{file name: its paths} for every file name that more than one of the project's modules has:
    `registry.py` in two folders reads as one module in a traceback, a search and a review. Not
    counted: `__init__.py` and `__main__.py`, the names Python itself gives a package and its
    `python -m` entry."""
    seen: dict[str, list[str]] = {}
    for path in project_modules(root).values():
        if path.name not in ("__init__.py", "__main__.py"):
            seen.setdefault(path.name, []).append(str(path.relative_to(root)))
    return {name: sorted(paths) for name, paths in seen.items() if len(paths) > 1}


def test_no_two_modules_share_a_file_name():
    clashes = same_basenames()
    assert not clashes, "modules sharing a name:\n" + "\n".join(f"{n}: {', '.join(p)}" for n, p in clashes.items())


def test_the_name_check_finds_a_planted_clash(tmp_path):
    for rel in ("saml_core/registry.py", "saml_core/data/registry.py", "saml_core/__init__.py",
                "saml_core/data/__init__.py", "dashboard/__init__.py", "dashboard/ui.py", "app_pages/x.py"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("")
    assert same_basenames(tmp_path) == {"registry.py": ["saml_core/data/registry.py", "saml_core/registry.py"]}
