"""The version of lthlib: the installed distribution's metadata (what ``pip install`` wrote), else the
``version`` line of the checkout's pyproject.toml (a checkout used without installing it), else
``0+unknown``. ``lthlib/__init__.py`` re-exports ``__version__``."""
from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

DISTRIBUTION = "lthlib"
UNKNOWN = "0+unknown"


def _from_pyproject(path: Path) -> str | None:
    """The ``version = "..."`` of the ``[project]`` table of ``path`` (None when absent or unreadable)."""
    try:
        text = path.read_text()
    except OSError:
        return None
    project = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, re.M | re.S)
    found = project and re.search(r"^version\s*=\s*[\"']([^\"']+)[\"']", project.group(1), re.M)
    return found.group(1) if found else None


def find_version(pyproject: Path | None = None) -> str:
    """The package version: metadata first, then the checkout's pyproject.toml, then ``UNKNOWN``."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    pyproject = pyproject or Path(__file__).resolve().parent.parent / "pyproject.toml"
    return _from_pyproject(pyproject) or UNKNOWN


__version__ = find_version()
