"""Datasets: CIFAR-10/100, Fashion-MNIST, Tiny-ImageNet (whole dataset as one uint8 tensor, batched
augmentation on the training device) and ImageNet (torchvision ImageFolder + DataLoader).

CIFAR and Fashion-MNIST are read with torchvision's own classes from ``data_root``. When missing they
are downloaded if the machine is online; offline, Fashion-MNIST is taken from Debian's
``dataset-fashion-mnist`` package; otherwise a DatasetMissingError says where to put the files.
Tiny-ImageNet is never downloaded: its official folder is decoded once and cached beside it.
"""
from __future__ import annotations

import gzip
import math
import os
import pickle
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

import functools
import hashlib
import warnings
import zipfile

import numpy as np
import torch

from .errors import DatasetMissingError, ConfigError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

@dataclass(frozen=True)
class DatasetSpec:
    """Everything the project knows about one dataset, in one place: geometry, normalization, the
    recipe's augmentation, full sizes, how it is read, and the paper's schedule and threshold for it."""
    name: str
    channels: int
    size: int
    classes: int
    mean: tuple
    std: tuple
    pad: int  # random-crop zero padding of the recipe (0: none)
    flip: bool
    train_size: int
    test_size: int
    kind: str = "tensor"  # "tensor": the whole split as uint8 tensors; "folder": JPEG folders + DataLoader
    paper_epochs: int = 160  # the paper's full schedule on this dataset
    similar_threshold: float = 0.5  # the paper's "similar" drop (points); see threshold_note
    threshold_note: str = ""
    in_paper: bool = True
    model_kind: str = "small"  # which models fit it (ModelSpec.input_kind)
    recipe_note: str = ""  # where normalization and augmentation come from, when not the paper or the code


DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (
    DatasetSpec("cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), 4, True, 50_000,
                10_000),
    DatasetSpec("cifar100", 3, 32, 100, (0.50708, 0.48655, 0.44092), (0.26733, 0.25644, 0.27615), 4, True,
                50_000, 10_000, similar_threshold=1.0),
    DatasetSpec("fashion_mnist", 1, 28, 10, (0.2860,), (0.3530,), 2, True, 60_000, 10_000, in_paper=False,
                threshold_note="not in the paper: CIFAR-10's thresholds"),
    DatasetSpec("tiny_imagenet", 3, 64, 200, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 4, True, 100_000,
                10_000, similar_threshold=1.0,
                recipe_note="the paper gives Tiny-ImageNet's schedule only: normalization is ImageNet-1K's "
                            "mean/std (Tiny-ImageNet is a 64x64 subset of it); augmentation the CIFAR recipe "
                            "scaled to 64x64 (zero-pad 4, random 64x64 crop, horizontal flip); the test split "
                            "is the labelled val split (10,000 images, 50 a class)"),
    DatasetSpec("imagenet", 3, 224, 1000, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225), 0, True, 1_281_167,
                50_000, kind="folder", paper_epochs=90, similar_threshold=1.5, model_kind="imagenet"),
)}


def check_dataset_name(name: str, source: str = "dataset") -> DatasetSpec:
    if name not in DATASETS:
        raise ConfigError(f"{source}: unknown dataset {name!r}. Known: {', '.join(DATASETS)}.")
    return DATASETS[name]


dataset_spec = check_dataset_name


@dataclass
class TensorData:
    """A whole split as tensors: ``x`` uint8 [N, C, H, W], ``y`` int64 [N]."""
    x: torch.Tensor
    y: torch.Tensor
    name: str
    source: str  # how it was obtained (path, download, Debian package)

    def __len__(self):
        return len(self.y)

    def to(self, device) -> "TensorData":
        return TensorData(self.x.to(device), self.y.to(device), self.name, self.source)


def _tvd():
    """torchvision.datasets, imported on first use (it pulls in torch._dynamo: ~2 s of every notebook's
    start-up that reads Fashion-MNIST from the IDX files would otherwise pay)."""
    from torchvision import datasets
    return datasets


@functools.lru_cache(maxsize=None)
def _cifar_reader(name: str):
    """(torchvision's reader without the md5 check, the official class). The unchecked one loads a copy
    in the same on-disk format (or one re-packed by a mirror)."""
    official = _tvd().CIFAR10 if name == "cifar10" else _tvd().CIFAR100
    unchecked = type(f"Unchecked{official.__name__}", (official,), {
        "train_list": [[f, None] for f, _ in official.train_list],
        "test_list": [[f, None] for f, _ in official.test_list],
        "meta": {**official.meta, "md5": None}})
    return unchecked, official


def _missing(name: str, root: Path, hint: str) -> DatasetMissingError:
    return DatasetMissingError(
        f"data_root={str(root)!r}: dataset {name!r} not found there and it could not be downloaded. {hint}")


def _load_cifar(name: str, root: Path, train: bool, download: bool) -> TensorData:
    (cls, official), folder = _cifar_reader(name), ("cifar-10-batches-py" if name == "cifar10"
                                                    else "cifar-100-python")
    download_error = None
    if not (root / folder).exists() and download:
        try:
            official(str(root), train=train, download=True)
        except Exception as exc:  # offline: fall through to the clear error below
            download_error = exc
    if not (root / folder).exists():
        extra = f" (download failed: {download_error})" if download_error else ""
        raise _missing(name, root, f"Put the python-pickle batches in {root / folder}/ (as extracted from "
                                   f"the official {folder.replace('-batches-py', '').replace('-python', '')}"
                                   f"-python.tar.gz), or run once with internet{extra}.")
    try:
        ds = cls(str(root), train=train, download=False)
        x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
        data = TensorData(x, torch.tensor(ds.targets, dtype=torch.long), name, str(root / folder))
        return check_split(data, train, root / folder)
    except Exception as exc:
        raise DatasetMissingError(f"{_cifar_problem(cls, root / folder, exc, DATASETS[name].classes)}. Delete "
                                  f"{root / folder} and run again online (it is downloaded), or extract a good "
                                  f"copy of the official archive there.") from exc


def _cifar_problem(cls, folder: Path, exc: Exception, classes: int) -> str:
    """Which file of a CIFAR folder torchvision could not read, or holds what CIFAR does not, and why (only
    called after a failure)."""
    names = [f for f, _ in cls.train_list + cls.test_list]
    for name in names + [cls.meta["filename"]]:  # torchvision wants all
        path = folder / name
        if not path.is_file():
            return f"{path}: missing (a CIFAR batch file)"
        try:
            with open(path, "rb") as f:
                entry = pickle.load(f, encoding="latin1")
        except Exception as err:
            return f"{path}: truncated or corrupt ({type(err).__name__}: {str(err)[:200]})"
        if name in names and (problem := _cifar_batch_problem(entry, classes)):
            return f"{path}: {problem}"
    if isinstance(exc, DatasetMissingError):
        return str(exc)
    return f"{folder}: the CIFAR batches could not be read ({type(exc).__name__}: {str(exc)[:200]})"


def _cifar_batch_problem(entry, classes: int) -> str | None:
    """What is wrong with one unpickled CIFAR batch (a dict of ``data``: N x 3072 uint8 rows and
    ``labels`` or ``fine_labels``: N labels in [0, classes)), or None."""
    if not isinstance(entry, dict) or "data" not in entry or not ({"labels", "fine_labels"} & set(entry)):
        return "not a CIFAR batch (a dict with 'data' and 'labels' or 'fine_labels')"
    data, labels = np.asarray(entry["data"]), np.asarray(entry.get("labels", entry.get("fine_labels")))
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        return f"its data is {data.dtype} of shape {data.shape}; a CIFAR batch holds uint8 rows of 3072 (3x32x32)"
    if labels.shape != (len(data),):
        return f"{len(data)} images with {labels.size} labels; a CIFAR batch has one label per image"
    if len(labels) and (labels.min() < 0 or labels.max() >= classes):
        return f"label {int(labels.max() if labels.max() >= classes else labels.min())} is not a class (0-{classes - 1})"
    return None


FASHION_MNIST_FILES = {True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
                       False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
_FMNIST_FIX = ("Delete it and run `make fashion-mnist` (downloads it, or takes Debian's dataset-fashion-mnist), "
               "or put a good uncompressed copy there.")


def _fashion_mnist_from_debian(root: Path) -> bool:
    """Gunzip the Debian package's IDX files into ROOT/FashionMNIST/raw (torchvision reads them
    uncompressed). Returns False when the package is not installed."""
    files = [f for pair in FASHION_MNIST_FILES.values() for f in pair]
    if not all((DEBIAN_FASHION_MNIST / f"{f}.gz").exists() for f in files):
        return False
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (raw / f).exists():
            tmp = raw / f".{f}.tmp{os.getpid()}"
            try:
                with gzip.open(DEBIAN_FASHION_MNIST / f"{f}.gz") as src, open(tmp, "wb") as dst:
                    shutil.copyfileobj(src, dst)
                os.replace(tmp, raw / f)
            except BaseException:
                tmp.unlink(missing_ok=True)
                raise
    return True


def idx_dims(path: Path, ndim: int) -> tuple[int, ...]:
    """The dims an uint8 IDX file declares, after checking it holds exactly that much data; else a
    DatasetMissingError naming the file, what is wrong and what to do."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(4 + 4 * ndim)
    if size == 0:
        raise DatasetMissingError(f"{path}: the file is empty. {_FMNIST_FIX}")
    if len(head) < 4 + 4 * ndim or head[:3] != b"\0\0\x08" or head[3] != ndim:
        gz = " (it is gzip-compressed: gunzip it)" if head[:2] == b"\x1f\x8b" else ""
        raise DatasetMissingError(f"{path}: not an uncompressed {ndim}-dimensional uint8 IDX file{gz}. "
                                  f"{_FMNIST_FIX}")
    dims = struct.unpack(">" + "I" * ndim, head[4:])
    want = 4 + 4 * ndim + math.prod(dims)
    if size != want:
        raise DatasetMissingError(f"{path}: {'truncated' if size < want else 'too long'}: {size:,} bytes, its "
                                  f"header ({' x '.join(map(str, dims))}) promises {want:,}. {_FMNIST_FIX}")
    return dims


def _check_fashion_mnist(raw: Path, train: bool) -> None:
    images, labels = (raw / f for f in FASHION_MNIST_FILES[train])
    n, h, w = idx_dims(images, 3)
    (m,) = idx_dims(labels, 1)
    if (h, w) != (28, 28) or n != m:
        raise DatasetMissingError(f"{images}: {n} images of {h}x{w} with {m} labels in {labels}; Fashion-MNIST "
                                  f"has 28x28 images, one label each. {_FMNIST_FIX}")


def _load_fashion_mnist(root: Path, train: bool, download: bool) -> TensorData:
    raw = root / "FashionMNIST" / "raw"
    present = lambda: all((raw / f).is_file() for pair in FASHION_MNIST_FILES.values() for f in pair)
    source = str(raw)
    if not present() and _fashion_mnist_from_debian(root):
        source = f"Debian package -> {raw}"
    if not present() and download:
        try:
            _tvd().FashionMNIST(str(root), train=train, download=True)
            source = f"download -> {raw}"
        except Exception:  # offline: the clear error below
            pass
    if not present():
        raise _missing("fashion_mnist", root,
                       "Install Debian's package (`apt-get install dataset-fashion-mnist`), or put the four "
                       f"uncompressed IDX files in {raw}/, or run once with internet.")
    _check_fashion_mnist(raw, train)
    ds = _tvd().FashionMNIST(str(root), train=train, download=False)
    data = TensorData(ds.data.unsqueeze(1).contiguous(), ds.targets.long().clone(), "fashion_mnist", source)
    images, labels = (raw / f for f in FASHION_MNIST_FILES[train])
    return check_split(data, train, images, labels, fix=_FMNIST_FIX)


TINY_FOLDER = "tiny-imagenet-200"
TINY_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
_TINY_CACHE_VERSION = 1


def _tiny_error(path: Path, problem: str) -> DatasetMissingError:
    return DatasetMissingError(
        f"{path}: {problem}. Tiny-ImageNet is read from <data_root>/{TINY_FOLDER}/ as the official archive "
        f"unpacks it (wnids.txt, train/<wnid>/images/*.JPEG, val/images/*.JPEG with val/val_annotations.txt); "
        f"it is not downloaded automatically: unzip {TINY_URL} into data_root.")


def _tiny_wnids(folder: Path) -> list[str]:
    """The class wnids of wnids.txt, sorted (label i is the i-th in sorted order, as ImageFolder's)."""
    if not folder.is_dir():
        raise _tiny_error(folder, "no such folder")
    path = folder / "wnids.txt"
    if not path.is_file():
        raise _tiny_error(path, "missing (the class wnids, one a line)")
    wnids = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not wnids or len(set(wnids)) != len(wnids):
        raise _tiny_error(path, "empty" if not wnids else "lists a wnid twice")
    return sorted(wnids)


def _is_jpeg(name: str) -> bool:
    return name.lower().endswith((".jpeg", ".jpg"))


def _tiny_train_files(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    out = []
    for label, wnid in enumerate(wnids):
        d = folder / "train" / wnid / "images"
        files = sorted(d / n for n in os.listdir(d) if _is_jpeg(n)) if d.is_dir() else []
        if not files:
            raise _tiny_error(d, f"no *.JPEG images of class {wnid} (listed in wnids.txt)")
        out += [(f, label) for f in files]
    return out


def _tiny_val_files(folder: Path, wnids: list[str]) -> list[tuple[Path, int]]:
    """(image, label) of every line of val/val_annotations.txt (file, wnid, x, y, w, h; tab-separated)."""
    ann, images = folder / "val" / "val_annotations.txt", folder / "val" / "images"
    if not ann.is_file():
        raise _tiny_error(ann, "missing (the val labels: file, wnid, x, y, w, h a line, tab-separated)")
    present = set(os.listdir(images)) if images.is_dir() else set()
    label, out = {w: i for i, w in enumerate(wnids)}, []
    for n, line in enumerate(ann.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = [p.strip() for p in line.split("\t")]
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise _tiny_error(ann, f"line {n} {line[:80]!r} is not 'file<TAB>wnid<TAB>x<TAB>y<TAB>w<TAB>h'")
        if parts[1] not in label:
            raise _tiny_error(ann, f"line {n} names wnid {parts[1]!r}, which is not in wnids.txt")
        if parts[0] not in present:
            raise _tiny_error(ann, f"line {n} names {images / parts[0]}, which does not exist")
        out.append((images / parts[0], label[parts[1]]))
    if not out:
        raise _tiny_error(ann, "no labelled images")
    return sorted(out)


def _decode_images(files: list[tuple[Path, int]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [N, 3, size, size] images (grayscale JPEGs converted to RGB) and int64 labels."""
    from PIL import Image
    x = np.empty((len(files), 3, size, size), dtype=np.uint8)
    for i, (path, _) in enumerate(files):
        try:
            with Image.open(path) as im:
                rgb = im.convert("RGB")
        except (OSError, ValueError) as exc:
            raise _tiny_error(path, f"not a readable image ({type(exc).__name__}: {str(exc)[:120]})") from exc
        if rgb.size != (size, size):
            raise _tiny_error(path, f"a {rgb.size[0]}x{rgb.size[1]} image; Tiny-ImageNet's are {size}x{size}")
        x[i] = np.asarray(rgb).transpose(2, 0, 1)
    return x, np.array([label for _, label in files], dtype=np.int64)


def _signature(folder: Path, files: list[tuple[Path, int]]) -> str:
    """What a cache was decoded from: the image paths (relative to the folder) and their labels."""
    h = hashlib.sha256(f"v{_TINY_CACHE_VERSION}".encode())
    for path, label in files:
        h.update(f"\n{path.relative_to(folder)}\t{label}".encode())
    return h.hexdigest()


def _read_cache(path: Path, signature: str):
    """(x, y) from a cache written for these files, else None (missing, stale or unreadable)."""
    try:
        with np.load(path) as z:
            if str(z["signature"]) == signature:
                return z["x"], z["y"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        pass
    return None


def _write_cache(path: Path, x: np.ndarray, y: np.ndarray, signature: str) -> bool:
    """Write the decoded split atomically (a temporary name, then os.replace); False when it cannot."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            np.savez(f, x=x, y=y, signature=np.array(signature))
        os.replace(tmp, path)
        return True
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"{path}: could not cache the decoded Tiny-ImageNet split ({exc}); it is decoded again "
                      f"next time")
        return False


def _load_tiny_imagenet(root: Path, train: bool) -> TensorData:
    """A Tiny-ImageNet split (train: 100,000 images; test: the labelled val split) from the official
    folder, decoded once with PIL and cached as <folder>/decoded-<split>.npz."""
    folder = root / TINY_FOLDER
    wnids = _tiny_wnids(folder)
    files = _tiny_train_files(folder, wnids) if train else _tiny_val_files(folder, wnids)
    cache = folder / f"decoded-{'train' if train else 'val'}.npz"
    sig = _signature(folder, files)
    got = _read_cache(cache, sig)
    how = "cached decode"
    if got is None:
        got = _decode_images(files, DATASETS["tiny_imagenet"].size)
        how = "decoded, cached" if _write_cache(cache, *got, sig) else "decoded, not cached"
    x, y = got
    data = TensorData(torch.from_numpy(x), torch.from_numpy(y), "tiny_imagenet", f"{folder} ({how}: {cache.name})")
    return check_split(data, train, cache if how == "cached decode" else folder, classes=len(wnids),
                       fix=f"Delete {cache} (it is decoded again from {folder}).")


def check_split(data: TensorData, train: bool, images, labels=None, classes: int | None = None,
                fix: str = "") -> TensorData:
    """``data`` when it is what its dataset holds: uint8 images of the dataset's shape, one int64 label
    each within [0, classes), and in a training split every class (a file of random labels, or all
    zeros, would train silently); else a DatasetMissingError naming ``images`` / ``labels`` (the files or
    folder read) and ``fix``."""
    spec, split = DATASETS[data.name], "training" if train else "test"
    labels, classes = labels or images, classes or spec.classes
    shape = (spec.channels, spec.size, spec.size)
    x, y = data.x, data.y
    if x.dtype != torch.uint8 or x.dim() != 4 or tuple(x.shape[1:]) != shape or not len(x):
        raise DatasetMissingError(f"{images}: the {split} images are {len(x):,} of {tuple(x.shape[1:])} "
                                  f"({x.dtype}); {data.name} has uint8 images of {' x '.join(map(str, shape))} "
                                  f"(channels x height x width). {fix}".rstrip())
    if y.dim() != 1 or len(y) != len(x) or y.dtype != torch.int64:
        raise DatasetMissingError(f"{labels}: {len(y):,} {split} labels ({y.dtype}) for {len(x):,} images; "
                                  f"one integer label per image. {fix}".rstrip())
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= classes:
        raise DatasetMissingError(f"{labels}: label {lo if lo < 0 else hi} is not a {data.name} class "
                                  f"(0-{classes - 1}). {fix}".rstrip())
    present = torch.bincount(y, minlength=classes) > 0
    if train and not bool(present.all()):
        missing = torch.nonzero(~present).flatten().tolist()
        raise DatasetMissingError(f"{labels}: the training labels hold {int(present.sum())} of the {classes} "
                                  f"classes of {data.name} (none of class {', '.join(map(str, missing[:10]))}"
                                  f"{' ...' if len(missing) > 10 else ''}): not the dataset, or not its labels. "
                                  f"{fix}".rstrip())
    return data


def digest(data: TensorData) -> str:
    """The sha256 of a split's content: its shapes, then the raw bytes of its images and labels (about
    0.1 s for Fashion-MNIST's 60,000 training images): what a run's config names as the data it trained on."""
    h = hashlib.sha256(f"{tuple(data.x.shape)} {data.x.dtype} {tuple(data.y.shape)} {data.y.dtype}\n".encode())
    for t in (data.x, data.y):
        h.update(memoryview(t.detach().cpu().contiguous().numpy()).cast("B"))
    return h.hexdigest()


def load_split(name: str, root, train: bool, download: bool = True) -> TensorData:
    """One split of CIFAR-10/100, Fashion-MNIST or Tiny-ImageNet (its test split: val) as uint8 tensors."""
    check_dataset_name(name)
    root = Path(root)
    if name in ("cifar10", "cifar100"):
        return _load_cifar(name, root, train, download)
    if name == "fashion_mnist":
        return _load_fashion_mnist(root, train, download)
    if name == "tiny_imagenet":
        return _load_tiny_imagenet(root, train)
    raise ConfigError(f"dataset {name!r} is read through imagenet_loaders(), not as tensors")


def stratified_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of a deterministic class-balanced subset of size ``n`` (sorted)."""
    if n >= len(y):
        return torch.arange(len(y))
    classes = torch.unique(y)
    g = torch.Generator().manual_seed(seed)
    per, rest = divmod(n, len(classes))
    picks = []
    for i, c in enumerate(classes.tolist()):
        idx = torch.nonzero(y == c).flatten()
        want = per + (1 if i < rest else 0)
        picks.append(idx[torch.randperm(len(idx), generator=g)[:want]])
    return torch.sort(torch.cat(picks)).values


def load_data(name: str, root, n_train: int | None = None, n_test: int | None = None,
              subset_seed: int = 0, download: bool = True) -> tuple[TensorData, TensorData]:
    train = load_split(name, root, True, download)
    test = load_split(name, root, False, download)
    if n_train:
        idx = stratified_subset(train.y, n_train, subset_seed)
        train = TensorData(train.x[idx], train.y[idx], train.name, train.source)
    if n_test:
        idx = stratified_subset(test.y, n_test, subset_seed)
        test = TensorData(test.x[idx], test.y[idx], test.name, test.source)
    return tuple(TensorData(d.x, d.y, d.name, f"{d.source} [sha256 {digest(d)}]") for d in (train, test))


class Batches:
    """Batches of a TensorData held on the training device: one permutation per epoch drawn from the
    data seed, random crop (zero padding) + horizontal flip done for the whole batch with torch ops,
    then normalization. The generator for epoch e is seeded by (seed, e), so a resumed run sees
    exactly the batches an uninterrupted run would.

    An epoch's random numbers (order, crop offsets, flips) are drawn on the CPU when it starts, in the
    order batch after batch used to draw them, and sent to the device in one copy: no batch waits for
    the device (a host-to-device copy of a small CPU tensor blocks until the queued work is done)."""

    def __init__(self, data: TensorData, batch_size: int, mean, std, train: bool, augment: bool = True,
                 pad: int = 4, flip: bool = True, seed: int = 0, device="cpu",
                 memory_format=torch.contiguous_format, rank: int = 0, world: int = 1):
        self.rank, self.world = rank, world
        self.data = data.to(device)
        self.batch_size, self.train, self.augment = batch_size, train, augment and train
        self.pad, self.flip, self.seed, self.device = pad, flip, seed, torch.device(device)
        shape = (1, -1, 1, 1)
        self.mean = torch.tensor(mean, device=device).view(shape) * 255
        self.std = torch.tensor(std, device=device).view(shape) * 255
        self.memory_format = memory_format
        self.epoch = 0

    def __len__(self):
        return (len(self.data) + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _generator(self) -> torch.Generator:
        g = torch.Generator(device="cpu")
        g.manual_seed(self.seed * 1_000_003 + self.epoch)
        return g

    def plan(self) -> torch.Tensor:
        """This epoch's draws on the device, [4, n] int64: image order, crop row and column offsets and
        flip (0/1) of the image at each position of the epoch (offsets/flips unused without augment)."""
        n = len(self.data)
        g = self._generator() if self.train else None
        order = torch.randperm(n, generator=g) if self.train else torch.arange(n)
        rest = [torch.zeros(n, dtype=torch.long)] * 3
        if self.augment:  # (only when training)
            draws = [draw_augment(min(self.batch_size, n - i), self.pad, self.flip, g)
                     for i in range(0, n, self.batch_size)]
            rest = [torch.cat([d[k] for d in draws]) for k in range(3)]
        return torch.stack([order] + rest).to(self.device)

    def assemble(self, plan: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (normalized float, augmented when training) and labels for the columns of ``plan``
        (any shape [4, ...]: one batch, or a batch of each of several orders)."""
        idx = plan[0]
        x, y = self.data.x[idx.flatten()], self.data.y[idx]
        if self.augment:
            x = augment_with(x, self.pad, self.flip, *(p.flatten() for p in plan[1:]))
        x = x.view(*idx.shape, *x.shape[1:])
        return (x.float() - self.mean) / self.std, y

    def __iter__(self):
        plan = self.plan()
        for i in range(0, len(self.data), self.batch_size):
            part = plan[:, i:i + self.batch_size]
            if self.world > 1:  # the whole global batch is drawn, so every rank's slice matches a 1-process run
                part = part[:, self.rank::self.world]
            x, y = self.assemble(part)
            yield x.contiguous(memory_format=self.memory_format), y


def draw_augment(b: int, pad: int, flip: bool, g: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Crop row/column offsets and flips (int64, [b] each) of a batch of ``b`` images, drawn from the CPU
    generator ``g`` in a fixed order (row offsets, column offsets, flips)."""
    zero = torch.zeros(b, dtype=torch.long)
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=g) if pad else zero
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=g) if pad else zero
    f = (torch.rand(b, generator=g) < 0.5).long() if flip else zero
    return dy, dx, f


def augment_with(x: torch.Tensor, pad: int, flip: bool, dy, dx, f) -> torch.Tensor:
    """Random crop of the original size after zero padding by ``pad`` + horizontal flip, per image, of a
    uint8 batch [B, C, H, W], with the draws ``dy``, ``dx``, ``f`` ([B] each, on x's device)."""
    b, c, h, w = x.shape
    dev = x.device
    if pad:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        x = xp[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
               rows, cols]
    if flip:
        x = torch.where(f.bool()[:, None, None, None], x.flip(3), x)
    return x


def augment_batch(x: torch.Tensor, pad: int, flip: bool, g: torch.Generator) -> torch.Tensor:
    """Random crop of the original size after zero padding by ``pad`` + random horizontal flip, per
    image, for a uint8 batch [B, C, H, W]; random numbers come from the CPU generator ``g``."""
    return augment_with(x, pad, flip, *(d.to(x.device) for d in draw_augment(x.shape[0], pad, flip, g)))


class EpochLoader:
    """A DataLoader whose sampler is told the epoch (DistributedSampler reshuffles by epoch)."""

    def __init__(self, loader, sampler=None):
        self.loader, self.sampler, self.dataset = loader, sampler, loader.dataset

    def set_epoch(self, epoch: int) -> None:
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        return iter(self.loader)


def imagenet_loaders(root, batch_size: int, workers: int = 8, eval_batch_size: int | None = None,
                     augment: bool = True, seed: int = 0, rank: int = 0, world: int = 1):
    """Train/val loaders over ``root/train`` and ``root/val`` ImageFolders with the NVIDIA recipe's
    transforms (RandomResizedCrop 224 + flip; resize 256 + center crop 224; ``augment=False`` uses the
    val transform for training too). The shuffle follows ``seed`` and the epoch; with ``world`` > 1
    each rank reads its share (``batch_size`` is the global batch)."""
    import torchvision.transforms as T
    from torch.utils.data import DataLoader, DistributedSampler
    root = Path(root)
    for split in ("train", "val"):
        if not (root / split).is_dir():
            raise DatasetMissingError(f"data_root={str(root)!r}: no {split}/ folder. ImageNet must be laid out "
                                      f"as ImageFolders: {root}/train/<wnid>/*.JPEG and {root}/val/<wnid>/*.JPEG.")
    spec = DATASETS["imagenet"]
    norm = T.Normalize(spec.mean, spec.std)
    val_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm])
    train_tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), norm]) if augment \
        else val_tf
    train = _tvd().ImageFolder(str(root / "train"), train_tf)
    val = _tvd().ImageFolder(str(root / "val"), val_tf)
    t_sampler = DistributedSampler(train, world, rank, shuffle=True, seed=seed, drop_last=True)
    v_sampler = DistributedSampler(val, world, rank, shuffle=False) if world > 1 else None
    pin = torch.cuda.is_available()
    per_rank = max(1, batch_size // world)
    tl = DataLoader(train, per_rank, sampler=t_sampler, num_workers=workers, pin_memory=pin, drop_last=True,
                    persistent_workers=workers > 0)
    vl = DataLoader(val, max(1, (eval_batch_size or batch_size) // world), sampler=v_sampler, shuffle=False,
                    num_workers=workers, pin_memory=pin)
    return EpochLoader(tl, t_sampler), vl, len(train.classes)


__all__ = ["DATASETS", "DatasetSpec", "dataset_spec", "TensorData", "Batches", "load_data", "load_split", "stratified_subset",
           "augment_batch", "imagenet_loaders", "EpochLoader", "check_split", "digest"]


def prepare(name: str, root) -> str:
    """Make sure a dataset is on disk (download, or Debian's package for Fashion-MNIST); returns where
    it came from. ``python -m lthlib.data prepare NAME ROOT``."""
    return load_split(name, root, True, download=True).source


if __name__ == "__main__":
    import sys
    if len(sys.argv) != 4 or sys.argv[1] != "prepare":
        sys.exit("usage: python -m lthlib.data prepare DATASET ROOT")
    try:
        print(f"{sys.argv[2]}: ready ({prepare(sys.argv[2], sys.argv[3])})")
    except Exception as exc:  # a clear one-line message for make
        sys.exit(f"error: {exc}")
