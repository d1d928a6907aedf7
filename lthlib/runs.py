"""Self-describing run folders: atomic file writes, checked loads, config hashing, locking.

A run folder is ``<readable name>-<hash>`` where the hash covers the run's identity (everything that
changes its result; not paths, thread count or device). It is finished when ``metrics.json`` exists --
that file is written last, by rename, so a crash never leaves a folder that looks done -- and every file
it promises is whole (``RunDir.problem``: readable JSON with numbers where numbers are read, torch files
that are whole zip archives, a history.csv with the engine's columns); a folder that fails this is
broken, named and retrained.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import fcntl
import hashlib
import io
import json
import math
import os
import zipfile
from pathlib import Path

import torch

from .errors import CheckpointError, ConfigError

FINISHED_MARKER = "metrics.json"


# ----------------------------------------------------------------------------- atomic writes
def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def atomic_write_bytes(path, data: bytes) -> None:
    """Write ``data`` to a temporary name beside ``path``, fsync, then rename over ``path``: readers see
    the old file or the whole new one. On failure (a full disk, a read-only folder) the temporary file
    is removed and the OSError (same errno) names ``path`` and what to do."""
    path = Path(path)
    tmp = _tmp_name(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        fix = ("free disk space there and run again (finished runs are kept)" if exc.errno == errno.ENOSPC
               else f"check that {path.parent} exists and is writable, then run again")
        raise OSError(exc.errno, f"could not write {path} ({exc.strerror or exc}); the partial temporary "
                                 f"file was removed: {fix}", str(path)) from exc


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


def load_json(path, what: str = "file"):
    """json.loads of ``path``; a missing or unreadable file is a CheckpointError naming it."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: {what} not found.") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{path}: {what} is not valid JSON ({exc}). Delete the run folder and "
                              f"run again.") from exc


def code_version() -> str:
    """``git describe`` of this code (recorded in every run; runs are not re-done when it changes), or
    ``LTHLIB_CODE_VERSION`` when set: a copy of the checkout without its .git (a lent GPU machine's) is
    told its revision by the command that starts it."""
    import subprocess
    if os.environ.get("LTHLIB_CODE_VERSION"):
        return os.environ["LTHLIB_CODE_VERSION"]
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


# ----------------------------------------------------------------------------- checked run files
# the columns of history.csv, as the training loop writes them (lthlib.training, one row per epoch)
HISTORY_COLUMNS = ("epoch", "lr", "train_loss", "train_acc", "test_loss", "test_acc", "train_time_s",
                   "epoch_time_s", "images_per_s")
_ZIP_MAGIC = b"PK\x03\x04"


def torch_file_problem(path) -> str | None:
    """Why ``path`` is not a whole file of ``torch.save`` (None when it is), cheaply: a zip archive whose
    directory (at its end, so a truncated file has none) lists the pickle torch writes; no tensor is read."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            magic = f.read(4)
        if magic != _ZIP_MAGIC:
            return f"{path.name} is not a torch file (it does not start as one)"
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        return f"{path.name} is truncated or corrupt ({type(exc).__name__})"
    if not any(n == "data.pkl" or n.endswith("/data.pkl") for n in names):
        return f"{path.name} is a zip archive but not a torch file (no data.pkl)"
    return None


def history_problem(path) -> str | None:
    """Why ``path`` is not a history.csv the engine wrote (None when it is): its header is
    ``HISTORY_COLUMNS``, and it holds at least one row, each with a value per column and a whole epoch."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        return f"{path.name} is missing"
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        return f"{path.name} is unreadable ({type(exc).__name__})"
    if not rows or tuple(rows[0]) != HISTORY_COLUMNS:
        return f"{path.name} does not start with the engine's header ({','.join(HISTORY_COLUMNS[:3])},...)"
    if len(rows) < 2:
        return f"{path.name} holds no epoch"
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(HISTORY_COLUMNS) or not row[0].isdigit():
            return f"{path.name} line {i} is not an epoch row ({len(row)} of {len(HISTORY_COLUMNS)} values)"
    return None


def is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def metrics_problem(met) -> str | None:
    """Why a parsed metrics.json cannot be read as a run's results (None when it can): the fields the
    results and the report read must hold numbers (``layer_sparsity`` a mapping of layer to number)."""
    if not isinstance(met, dict):
        return f"metrics.json holds a {type(met).__name__}, not a mapping of field: value"
    for key in ("final_test_acc", "global_sparsity"):
        if key not in met:
            return f"metrics.json lacks {key} (final_test_acc/global_sparsity)"
        if not is_number(met[key]):
            return f"metrics.json field {key} is {str(met[key])[:40]!r}, not a finite number"
    for key in ("best_test_acc_secondary", "best_epoch_secondary", "wall_time_s", "threads"):
        if met.get(key) is not None and not is_number(met[key]):
            return f"metrics.json field {key} is {str(met[key])[:40]!r}, not a number"
    layers = met.get("layer_sparsity", {})
    if not isinstance(layers, dict) or not all(is_number(v) for v in layers.values()):
        return "metrics.json field layer_sparsity is not a mapping of layer name to number"
    return None


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

    def kept(self, epoch: int) -> Path:
        """The weights kept after epoch ``epoch`` (θ_t for weight rewinding), when its plan asks."""
        return self.path / f"weights_e{epoch:03d}.pt"

    @property
    def name(self) -> str:
        return self.path.name

    def finished(self) -> bool:
        """Finished: metrics.json (written last) and every file the run promises are present and
        readable. A folder with metrics.json that fails this is broken (see ``problem``) and retrained."""
        return self.metrics.exists() and self.problem() is None

    def problem(self, weights: bool = True) -> str | None:
        """Why a folder holding metrics.json is not a usable finished run (None when it is). With
        ``weights=False`` only its results are asked for (metrics, config, history present): what a report
        reads, e.g. of run folders copied back from a GPU machine without their weight files; it stays cheap
        (no weight file is opened). With weights, every .pt file must be a whole torch file and history.csv
        must hold the engine's columns and a row per epoch. Training that needs the weights retrains a run
        with a problem."""
        try:
            met, cfg = json.loads(self.metrics.read_text()), json.loads(self.config.read_text())
        except FileNotFoundError as exc:
            return f"{Path(exc.filename).name} is missing"
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            return f"metrics.json or config.json is unreadable ({type(exc).__name__})"
        if (why := metrics_problem(met)) is not None:
            return why
        if not isinstance(cfg, dict) or not isinstance(cfg.get("identity"), dict):
            return "config.json lacks the run's identity"
        sparse = "mask_source" in cfg["identity"]  # a masked run promises mask.pt (dense and SDT runs do not)
        needed = [self.history] + ([self.init, self.final] + [self.mask] * sparse if weights else [])
        for f in needed:
            if not f.exists() or f.stat().st_size == 0:
                return f"{f.name} is missing or empty"
        if not weights:
            return None
        return history_problem(self.history) or next(
            (why for f in needed[1:] if (why := torch_file_problem(f)) is not None), None)

    def read_config(self) -> dict:
        return load_json(self.config, "run config")

    def read_metrics(self) -> dict:
        return load_json(self.metrics, "run metrics")

    def load_final(self) -> dict:
        return load_checkpoint(self.final, "final weights (θT)")

    def load_init(self) -> dict:
        return load_checkpoint(self.init, "initial weights (θ0)")

    def load_kept(self, epoch: int) -> dict:
        return load_checkpoint(self.kept(epoch), f"weights after epoch {epoch} (θ_t)")

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
