"""lthlib as an installable package: the wheel built from the checkout carries every pruning profile, the
console scripts and its declared dependencies; installed into a fresh venv (slow) it loads a profile from
a folder outside the checkout. And scripts/check_env.py: environment.yml, requirements.txt and
pyproject.toml agree, and a deliberately mismatched copy is named."""
from __future__ import annotations

import configparser
import email.parser
import importlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "params" / "profiles").glob("*.yaml"))
ENTRY_POINTS = {"lthlib-plan": "lthlib.plan:main", "lthlib-schedule": "lthlib.schedule:main",
                "lthlib-report": "lthlib.report:main", "lthlib-runs": "lthlib.cli:main"}
TEST_ONLY = {"pytest"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
PIP_ENV = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}


def _source_copy(dst: Path) -> Path:
    """What a wheel is built from, copied out of the checkout (the build writes build/ and *.egg-info
    beside its sources; the shared checkout stays untouched)."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, dst / name)
    shutil.copytree(ROOT / "lthlib", dst / "lthlib", ignore=ignore)
    shutil.copytree(ROOT / "params" / "profiles", dst / "params" / "profiles", ignore=ignore)
    return dst


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = _source_copy(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
                           "-w", str(out), str(src)], capture_output=True, text=True, env=PIP_ENV, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    [found] = out.glob("lthlib-*.whl")
    return found


def _dist_file(whl: Path, name: str) -> str:
    with zipfile.ZipFile(whl) as z:
        [path] = [n for n in z.namelist() if n.endswith(f".dist-info/{name}")]
        return z.read(path).decode()


def _pins() -> dict[str, Requirement]:
    reqs = [Requirement(line.split("#")[0].strip()) for line in (ROOT / "requirements.txt").read_text().splitlines()
            if line.split("#")[0].strip()]
    return {canonicalize_name(r.name): r for r in reqs}


def test_wheel_carries_every_profile_as_package_data(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert PROFILES, "no profiles in params/profiles"
        for p in PROFILES:
            assert z.read(f"lthlib/profiles/{p.name}") == p.read_bytes()
    assert {"lthlib/__init__.py", "lthlib/tickets.py", "lthlib/cli.py", "lthlib/_version.py"} <= names
    assert not [n for n in names if n.startswith(("tests/", "params/", "notebooks/"))]


def test_wheel_declares_the_console_scripts(wheel):
    ep = configparser.ConfigParser()
    ep.read_string(_dist_file(wheel, "entry_points.txt"))
    assert dict(ep["console_scripts"]) == ENTRY_POINTS
    for target in ENTRY_POINTS.values():
        module, func = target.split(":")
        assert callable(getattr(importlib.import_module(module), func)), target


def test_wheel_declares_requirements_txt_as_its_dependencies(wheel):
    meta = email.parser.Parser().parsestr(_dist_file(wheel, "METADATA"))
    declared = [Requirement(r) for r in meta.get_all("Requires-Dist")]
    core = {canonicalize_name(r.name): r for r in declared if r.marker is None}
    extras = {canonicalize_name(r.name): r for r in declared if r.marker is not None}
    for name, pin in _pins().items():
        version = next(iter(pin.specifier)).version
        req = extras.get(name) if name in TEST_ONLY else core.get(name) or extras.get(name)
        assert req is not None, f"{pin} of requirements.txt is not a Requires-Dist"
        assert req.specifier.contains(version, prereleases=True), f"{req} does not admit the pin {pin}"
        if name in TEST_ONLY:
            assert name not in core and req.marker.evaluate({"extra": "test"}), req
    assert {"torch", "torchvision", "numpy", "pyyaml", "pandas"} <= set(core)
    assert set(core) | set(extras) == set(_pins())
    assert meta["Name"] == "lthlib" and meta["Version"] == importlib.import_module("lthlib._version").__version__
    assert meta["Requires-Python"] == PROJECT["requires-python"]


def test_version_comes_from_metadata_or_the_checkout(tmp_path):
    from lthlib import _version
    assert _version.__version__ == _version._from_pyproject(ROOT / "pyproject.toml") == PROJECT["version"]
    (tmp_path / "pyproject.toml").write_text('[build-system]\nrequires = []\n[project]\nname = "x"\n'
                                             'version = "9.8.7"\n[tool.x]\nversion = "1"\n')
    assert _version._from_pyproject(tmp_path / "pyproject.toml") == "9.8.7"
    assert _version._from_pyproject(tmp_path / "absent.toml") is None


def _fresh_venv(path: Path) -> Path:
    """A venv on this interpreter that sees the project venv's packages (a .pth line: its own
    site-packages come first), so installing the wheel's dependencies downloads nothing."""
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(path)], check=True,
                   timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_project_venv.pth").write_text("".join(f"{p}\n" for p in sorted(ours)))
    return python


PROBE = """
import json, lthlib, lthlib._version, lthlib.models as m
print(json.dumps({"file": lthlib.__file__, "profiles": str(m.PROFILE_DIR), "version": lthlib._version.__version__,
                  "resnet20": m.load_profile("resnet20")}))
"""


@pytest.mark.slow
def test_wheel_installs_into_a_fresh_venv_and_loads_a_profile_outside_the_checkout(wheel, tmp_path):
    venv = tmp_path / "venv"
    python = _fresh_venv(venv)
    done = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-index",
                           "--no-build-isolation", str(wheel)], capture_output=True, text=True, env=PIP_ENV,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr  # every declared dependency was found installed
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([str(python), "-c", PROBE], cwd=elsewhere, capture_output=True, text=True, env=env,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout.strip().splitlines()[-1])
    assert Path(got["file"]).is_relative_to(venv) and Path(got["profiles"]).is_relative_to(venv)
    assert Path(got["profiles"]).name == "profiles" and got["version"] == PROJECT["version"]
    from lthlib.models import load_profile
    assert got["resnet20"] == load_profile("resnet20")
    for script in ENTRY_POINTS:
        shown = subprocess.run([str(venv / "bin" / script), "--help"], cwd=elsewhere, capture_output=True,
                               text=True, env=env, timeout=300)
        assert shown.returncode == 0 and "usage" in shown.stdout.lower(), (script, shown.stderr)
    listed = subprocess.run([str(venv / "bin" / "lthlib-runs"), str(elsewhere)], cwd=elsewhere,
                            capture_output=True, text=True, env=env, timeout=300)
    assert listed.returncode == 0 and "no finished runs" in listed.stdout, listed.stderr


# ----------------------------------------------------------------------------- scripts/check_env.py
CHECK_ENV = ROOT / "scripts" / "check_env.py"


def _check_env_module():
    spec = importlib.util.spec_from_file_location("check_env", CHECK_ENV)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _env_copy(tmp_path: Path) -> Path:
    for name in ("environment.yml", "requirements.txt", "pyproject.toml"):
        shutil.copy2(ROOT / name, tmp_path / name)
    return tmp_path


def test_check_env_passes_on_the_repository_files():
    done = subprocess.run([sys.executable, str(CHECK_ENV)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "agree" in done.stdout


def test_environment_yml_documents_the_kernel_and_includes_the_pins():
    text = (ROOT / "environment.yml").read_text()
    assert "python -m ipykernel install --user --name lthlib" in text and "check_env.py" in text
    assert "-r requirements.txt" in text


def test_check_env_names_a_mismatched_copy(tmp_path):
    root = _env_copy(tmp_path)
    env = root / "environment.yml"
    env.write_text(env.read_text().replace("python=3.11", "python=3.9")
                   .replace("- -r requirements.txt", "- torch==2.13.0"))
    done = subprocess.run([sys.executable, str(CHECK_ENV), "--root", str(root)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 1
    assert "python=3.9 does not satisfy" in done.stderr
    assert "pins torch==2.13.0, requirements.txt pins torch==2.14.1" in done.stderr
    assert "numpy==2.4.6 (requirements.txt) is missing from the pip section" in done.stderr


@pytest.mark.parametrize("file, old, new, named", [
    ("environment.yml", "- -r requirements.txt", "- -r requirements.txt\n      - numpy==2.4.5",
     "pip section pins numpy==2.4.5, requirements.txt pins numpy==2.4.6"),
    ("environment.yml", "- pip\n", "- pip\n  - pandas=3.0.0\n", "conda package pandas=3.0.0"),
    ("environment.yml", "- pip:", "- pip:\n      - rich==13.0.0", "rich==13.0.0, which requirements.txt does not"),
    ("pyproject.toml", '    "scipy>=1.17.1",\n', "", "declares no dependency on scipy"),
    ("pyproject.toml", '"scipy>=1.17.1"', '"scipy>=1.18"', "requires scipy>=1.18, requirements.txt pins"),
    ("pyproject.toml", 'requires-python = ">=3.10"', 'requires-python = ">=3.12"', "requires-python >=3.12"),
    ("requirements.txt", "cloudpickle==3.1.3", "cloudpickle==3.1.3\nrich==13.0.0", "no dependency on rich"),
])
def test_check_env_names_each_kind_of_mismatch(tmp_path, file, old, new, named):
    root = _env_copy(tmp_path)
    text = (root / file).read_text()
    assert old in text
    (root / file).write_text(text.replace(old, new))
    problems = _check_env_module().check(root)
    assert any(named in p for p in problems), problems
    assert _check_env_module().main(["--root", str(root)]) == 1


def test_check_env_reads_conda_python_specs():
    ok = _check_env_module().conda_python_ok
    assert ok("=3.11", ">=3.10") and ok("==3.11.7", ">=3.11.4") and ok("3.11.*", ">=3.10")
    assert ok("=3.11", ">=3.11.4")  # some 3.11.x satisfies it
    assert not ok("=3.9", ">=3.10") and not ok("=3.12", ">=3.10,<3.12") and not ok("latest", ">=3.10")
