"""Self-describing run folders: atomic file writes, checked loads, config hashing, locking.

A run folder is ``<readable name>-<hash>`` where the hash covers the run's identity (everything that
changes its result; not paths, thread count or device). It is finished exactly when ``metrics.json``
exists -- that file is written last, by rename, so a crash never leaves a folder that looks done.
"""
from __future__ import annotations

import contextlib
import csv
import fcntl
import hashlib
import io
import json
import os
from pathlib import Path

import torch

from .errors import CheckpointError, ConfigError

FINISHED_MARKER = "metrics.json"


# ----------------------------------------------------------------------------- atomic writes
def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_torch_save(obj, path) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def atomic_write_csv(path, rows: list[dict]) -> None:
    buf = io.StringIO()
    if rows:
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def load_checkpoint(path, what: str = "checkpoint"):
    """torch.load that turns a missing, truncated or corrupt file into a CheckpointError naming it."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"{path}: {what} not found. Run the setting that produces it first.")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: {what} is corrupt or truncated ({type(exc).__name__}: "
                              f"{str(exc)[:200]}). Delete the file (or its run folder) and run again "
                              f"to recompute it.") from exc


def load_json(path, what: str = "file") -> dict:
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {what} not found.") from None
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{path}: {what} is not valid JSON ({exc}). Delete the run folder and "
                              f"run again.") from exc


def code_version() -> str:
    """``git describe`` of this code (recorded in every run; runs are not re-done when it changes)."""
    import subprocess
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except Exception:
        return "unknown"


# ----------------------------------------------------------------------------- paths
def project_path(path) -> Path:
    """Relative paths in params (out_root, data_root) are relative to the project root: the nearest
    folder above the working directory holding params/ and lthlib/ (so a notebook opened from
    notebooks/ and papermill run from the root write to the same place); else the working directory."""
    path = Path(path)
    if path.is_absolute():
        return path
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / "params").is_dir() and (folder / "lthlib").is_dir():
            return folder / path
    return here / path


# ----------------------------------------------------------------------------- identity
def config_hash(identity: dict) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:8]


def fmt_num(x: float) -> str:
    return f"{x:g}"


class RunDir:
    """A run folder and its files."""

    def __init__(self, path):
        self.path = Path(path)

    # files
    config = property(lambda self: self.path / "config.json")
    init = property(lambda self: self.path / "init.pt")
    final = property(lambda self: self.path / "final.pt")
    mask = property(lambda self: self.path / "mask.pt")
    history = property(lambda self: self.path / "history.csv")
    metrics = property(lambda self: self.path / FINISHED_MARKER)
    checkpoint = property(lambda self: self.path / "checkpoint.pt")

    @property
    def name(self) -> str:
        return self.path.name

    def finished(self) -> bool:
        """Finished: metrics.json (written last) and every file the run promises are present and
        readable. A folder with metrics.json that fails this is broken (see ``problem``) and retrained."""
        return self.metrics.exists() and self.problem() is None

    def problem(self) -> str | None:
        """Why a folder holding metrics.json is not a usable finished run (None when it is)."""
        try:
            met, cfg = json.loads(self.metrics.read_text()), json.loads(self.config.read_text())
        except FileNotFoundError as exc:
            return f"{Path(exc.filename).name} is missing"
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            return f"metrics.json or config.json is unreadable ({type(exc).__name__})"
        if not isinstance(met, dict) or not {"final_test_acc", "global_sparsity"} <= set(met):
            return "metrics.json lacks final_test_acc/global_sparsity"
        if not isinstance(cfg, dict) or not isinstance(cfg.get("identity"), dict):
            return "config.json lacks the run's identity"
        needed = [self.init, self.final, self.history] + ([self.mask] if cfg["identity"].get("setting") != "pretrain"
                                                          else [])
        for f in needed:
            if not f.exists() or f.stat().st_size == 0:
                return f"{f.name} is missing or empty"
        return None

    def read_config(self) -> dict:
        return load_json(self.config, "run config")

    def read_metrics(self) -> dict:
        return load_json(self.metrics, "run metrics")

    def load_final(self) -> dict:
        return load_checkpoint(self.final, "final weights (θT)")

    def load_init(self) -> dict:
        return load_checkpoint(self.init, "initial weights (θ0)")

    def load_mask(self) -> dict:
        return load_checkpoint(self.mask, "mask")

    def check_identity(self, identity: dict) -> None:
        """A folder with this hash must hold this identity (catches edited configs and collisions)."""
        if self.config.exists():
            cfg = self.read_config()
            found = cfg.get("identity") if isinstance(cfg, dict) else None
            if found != json.loads(json.dumps(identity, default=str)):
                raise ConfigError(f"{self.config}: this run folder holds a different configuration than "
                                  f"the one asked for (edited by hand?). Move or delete {self.path} and run again.")

    @contextlib.contextmanager
    def lock(self):
        """Exclusive lock so two processes never train the same run at once (the second waits)."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "w") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def __repr__(self):
        state = "finished" if self.finished() else "unfinished"
        return f"RunDir({str(self.path)!r}, {state})"
