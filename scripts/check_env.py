#!/usr/bin/env python
"""Check that the project's three descriptions of its environment agree; exit 1 naming each mismatch.

    python scripts/check_env.py                 # the repository's files
    python scripts/check_env.py --root DIR      # environment.yml, requirements.txt, pyproject.toml in DIR
    python scripts/check_env.py --kernel        # also: the 'lthlib' Jupyter kernel is registered

requirements.txt holds the exact pins (the source of truth). environment.yml must carry every one of them
in its pip section, written there or included with ``-r requirements.txt``, and no pin of its own that
differs; its python must satisfy pyproject.toml's requires-python. pyproject.toml must declare every
pinned package as a dependency or an extra whose version range holds the pin, and nothing unpinned.
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

try:
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.specifiers import SpecifierSet
    from packaging.utils import canonicalize_name
except ImportError:  # pip carries a copy
    from pip._vendor.packaging.requirements import InvalidRequirement, Requirement
    from pip._vendor.packaging.specifiers import SpecifierSet
    from pip._vendor.packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
KERNEL = "lthlib"


def read_requirements(path: Path, seen=()) -> dict[str, Requirement]:
    """The requirements of a pip requirements file by canonical name, ``-r`` includes followed (relative
    to the including file); other options (``-e``, ``--index-url``) are not pins and are skipped."""
    return requirement_lines(path.read_text().splitlines(), path.parent, str(path), (*seen, path.resolve()))


def requirement_lines(lines, base: Path, source: str, seen=()) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for raw in lines:
        line = re.sub(r"(^|\s)#.*$", "", str(raw)).strip()
        include = re.match(r"^(-r|--requirement)[\s=]+(\S+)$", line)
        if include:
            path = base / include.group(2)
            if path.resolve() in seen:
                raise ValueError(f"{source}: `{line}` includes itself")
            if not path.exists():
                raise ValueError(f"{source}: `{line}`: {path} does not exist")
            out.update(read_requirements(path, seen))
        elif line and not line.startswith("-"):
            try:
                req = Requirement(line)
            except InvalidRequirement as exc:
                raise ValueError(f"{source}: `{line}` is not a requirement ({exc})") from None
            out[canonicalize_name(req.name)] = req
    return out


def read_pyproject(path: Path) -> dict:
    try:
        import tomllib
    except ImportError:  # Python 3.10
        from pip._vendor import tomli as tomllib
    return tomllib.loads(path.read_text()).get("project", {})


def read_environment(path: Path) -> tuple[str | None, dict[str, str], list]:
    """(python spec, other conda packages name -> spec, the pip section's lines) of environment.yml."""
    import yaml
    doc = yaml.safe_load(path.read_text()) or {}
    python, conda, pip = None, {}, []
    for dep in doc.get("dependencies") or []:
        if isinstance(dep, dict):
            pip += list(dep.get("pip") or [])
            continue
        m = re.match(r"^\s*([A-Za-z0-9_.\-]+)\s*(.*)$", str(dep))
        name, spec = m.group(1), m.group(2).strip()
        if name == "python":
            python = spec
        else:
            conda[canonicalize_name(name)] = spec
    return python, conda, pip


def conda_python_ok(spec: str, requires: str) -> bool:
    """Whether conda's python spec (``=3.11``: any 3.11.x; ``==3.11.7``, ``>=3.10``, ``3.11.*``) allows a
    version that pyproject's requires-python accepts."""
    m = re.match(r"^(=|==|>=|<=|>|<|~=|!=)?\s*([0-9][0-9.]*)(\.\*)?$", spec.replace(" ", ""))
    if not m:
        return False
    allowed, op, version = SpecifierSet(requires), m.group(1) or "=", m.group(2)
    if op == "=" or m.group(3):  # a prefix: 3.11 is any 3.11.x
        parts = version.split(".")
        if len(parts) >= 3:
            return allowed.contains(version)
        return any(allowed.contains(f"{version}.{patch}") for patch in range(100))
    return allowed.contains(version)


def check_environment(pins: dict, env: Path, requires: str | None) -> list[str]:
    """Mismatches between environment.yml and the requirements.txt pins (and requires-python)."""
    problems = []
    python, conda, pip_lines = read_environment(env)
    if python is None:
        problems.append(f"{env.name}: no python in its dependencies (pyproject.toml requires {requires})")
    elif requires and not conda_python_ok(python, requires):
        problems.append(f"{env.name}: python{python} does not satisfy pyproject.toml's requires-python "
                        f"{requires}")
    pip = requirement_lines(pip_lines, env.parent, f"{env.name} (pip section)")
    for name, req in pins.items():
        if name not in pip:
            problems.append(f"{env.name}: {req} (requirements.txt) is missing from the pip section "
                            f"(add it, or include the file with `-r requirements.txt`)")
        elif pip[name].specifier != req.specifier:
            problems.append(f"{env.name}: pip section pins {pip[name]}, requirements.txt pins {req}")
        if name in conda and conda[name].lstrip("=") != str(req.specifier).lstrip("="):
            problems.append(f"{env.name}: conda package {name}{conda[name]} differs from requirements.txt's "
                            f"{req}")
    for name, req in pip.items():
        if name not in pins:
            problems.append(f"{env.name}: pip section pins {req}, which requirements.txt does not pin")
    return problems


def check_pyproject(pins: dict, project: dict) -> list[str]:
    """Mismatches between pyproject.toml's declared dependencies (extras included) and the pins."""
    declared: dict[str, Requirement] = {}
    for line in [*project.get("dependencies", []),
                 *(d for extra in project.get("optional-dependencies", {}).values() for d in extra)]:
        req = Requirement(line)
        declared[canonicalize_name(req.name)] = req
    problems = []
    for name, req in pins.items():
        pinned = next((s.version for s in req.specifier if s.operator == "=="), None)
        if name not in declared:
            problems.append(f"pyproject.toml: declares no dependency on {req.name} (requirements.txt pins {req})")
        elif pinned and not declared[name].specifier.contains(pinned, prereleases=True):
            problems.append(f"pyproject.toml: requires {declared[name]}, requirements.txt pins {req}")
    for name, req in declared.items():
        if name not in pins:
            problems.append(f"pyproject.toml: depends on {req}, which requirements.txt does not pin")
    return problems


def check_kernel(name: str = KERNEL) -> list[str]:
    """The Jupyter kernel ``name`` is registered where this interpreter's Jupyter looks."""
    fix = f"register it: {Path(sys.executable).name} -m ipykernel install --user --name {name}"
    try:
        from jupyter_client.kernelspec import KernelSpecManager
    except ImportError:
        return [f"jupyter_client is not installed in {sys.prefix} (ipykernel brings it); then {fix}"]
    if name not in KernelSpecManager().find_kernel_specs():
        return [f"no Jupyter kernel named {name!r} is registered: {fix}"]
    return []


def check(root: Path, kernel: bool = False) -> list[str]:
    """Every mismatch among root's environment.yml, requirements.txt and pyproject.toml (and the kernel)."""
    files = {n: root / n for n in ("requirements.txt", "environment.yml", "pyproject.toml")}
    missing = [str(p) for p in files.values() if not p.exists()]
    if missing:
        return [f"{p}: not found" for p in missing]
    try:
        pins = read_requirements(files["requirements.txt"])
        project = read_pyproject(files["pyproject.toml"])
        problems = check_environment(pins, files["environment.yml"], project.get("requires-python"))
        problems += check_pyproject(pins, project)
    except (ValueError, InvalidRequirement) as exc:
        return [str(exc)]
    return problems + (check_kernel() if kernel else [])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--root", type=Path, default=ROOT, help="folder holding the three files (default: the repo)")
    ap.add_argument("--kernel", action="store_true", help=f"also check that the {KERNEL!r} kernel is registered")
    args = ap.parse_args(argv)
    problems = check(args.root, args.kernel)
    for p in problems:
        print(f"check_env: {p}", file=sys.stderr)
    if problems:
        print(f"check_env: {len(problems)} mismatch(es) in {args.root}", file=sys.stderr)
        return 1
    print(f"check_env: environment.yml, requirements.txt and pyproject.toml agree in {args.root}"
          + (f"; kernel {KERNEL!r} registered" if args.kernel else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
