"""The shape of lthlib: no import cycles (lazy imports included), short functions, and the list of
settings spelled out in one place."""
import ast
from pathlib import Path

LIB = Path(__file__).resolve().parent.parent / "lthlib"


def _imports(path: Path) -> set[str]:
    """lthlib modules ``path`` imports anywhere (top level or inside functions)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module:
                out.add(node.module.split(".")[0])
            elif node.level == 1:
                out.update(a.name for a in node.names)
            elif node.module and node.module.startswith("lthlib."):
                out.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            out.update(a.name.split(".")[1] for a in node.names if a.name.startswith("lthlib."))
    return out - {path.stem}


def _graph() -> dict[str, set[str]]:
    mods = {p.stem for p in LIB.glob("*.py")} - {"__init__"}
    return {p.stem: _imports(p) & mods for p in LIB.glob("*.py") if p.stem != "__init__"}


def _cycle(graph) -> list[str] | None:
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state and (found := visit(n)):
                return found
        state[m] = "done"
        stack.pop()
        return None
    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_cycle_among_lthlib_modules():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()))


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_function_over_60_lines():
    long = []
    for p in LIB.glob("*.py"):
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 60:
                    long.append(f"{p.stem}.{node.name} ({n} lines)")
    assert not long, long


def test_setting_names_are_spelled_out_in_one_file():
    """A collection literal (tuple, list, set, dict keys) naming three or more settings is a list of
    settings; only the registry may hold one (``__all__`` lists function names, not settings)."""
    names = {"pretrain", "lt_imp", "rr_imp", "lt_omp", "rr_omp", "oneshot_retrain", "random_prune"}
    listing = []
    for p in LIB.glob("*.py"):
        tree = ast.parse(p.read_text())
        skip = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Assign)
                and any(isinstance(t, ast.Name) and t.id == "__all__" for t in n.targets)}
        for node in ast.walk(tree):
            items = node.keys if isinstance(node, ast.Dict) else getattr(node, "elts", None)
            if id(node) in skip or not isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict)):
                continue
            found = {i.value for i in items if isinstance(i, ast.Constant) and i.value in names}
            if len(found) >= 3:
                listing.append(p.name)
    assert sorted(set(listing)) == [], listing


def test_the_protocol_and_the_results_stay_apart_from_the_engine():
    """settings.py (the protocol) imports nothing of the engine or the training; results.py neither the
    engine nor the settings' internals: it asks the protocol for plans only."""
    graph = _graph()
    assert not graph["settings"] & {"engine", "training", "capture", "packing", "schedule"}
    assert not graph["results"] & {"engine", "training", "capture", "packing", "schedule"}
    tree = ast.parse((LIB / "results.py").read_text())
    used = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
            and n.value.id == "protocol"}
    assert used <= {"plan_for", "plan", "grid_plans", "cells"}, used


def test_no_hidden_mode_and_no_unread_environment_variable():
    """The scheduler asks the plans (no module-global collecting mode); every LTHLIB_* variable set
    somewhere is read somewhere."""
    import re
    texts = {p: p.read_text() for p in [*LIB.glob("*.py"), LIB.parent / "Makefile", *LIB.parent.glob("scripts/*")]}
    assert not any("_COLLECT" in t or "Deferred" in t for t in texts.values())
    for name in {m for t in texts.values() for m in re.findall(r"LTHLIB_[A-Z_]+", t)}:
        readers = [p for p, t in texts.items() if re.search(rf"(\$\$?{name}\b|environ(\.get)?\(?\[?['\"]{name})", t)]
        assert readers, f"{name} is set but never read"
