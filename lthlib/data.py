"""Datasets: CIFAR-10/100, Fashion-MNIST (whole dataset as one uint8 tensor, batched augmentation on
the training device) and ImageNet (torchvision ImageFolder + DataLoader).

Datasets are read with torchvision's own classes from ``data_root``. When missing they are
downloaded if the machine is online; offline, Fashion-MNIST is taken from Debian's
``dataset-fashion-mnist`` package; otherwise a DatasetMissingError says where to put the files.
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


DATASETS: dict[str, DatasetSpec] = {d.name: d for d in (
    DatasetSpec("cifar10", 3, 32, 10, (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010), 4, True, 50_000,
                10_000),
    DatasetSpec("cifar100", 3, 32, 100, (0.50708, 0.48655, 0.44092), (0.26733, 0.25644, 0.27615), 4, True,
                50_000, 10_000, similar_threshold=1.0),
    DatasetSpec("fashion_mnist", 1, 28, 10, (0.2860,), (0.3530,), 2, True, 60_000, 10_000, in_paper=False,
                threshold_note="not in the paper: CIFAR-10's thresholds"),
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
    except Exception as exc:
        raise DatasetMissingError(f"{_cifar_problem(cls, root / folder, exc)}. Delete {root / folder} "
                                  f"and run again online (it is downloaded), or extract a good copy of the "
                                  f"official archive there.") from exc
    return TensorData(x, torch.tensor(ds.targets, dtype=torch.long), name, str(root / folder))


def _cifar_problem(cls, folder: Path, exc: Exception) -> str:
    """Which file of a CIFAR folder torchvision could not read, and why (only called after a failure)."""
    names = [f for f, _ in cls.train_list + cls.test_list] + [cls.meta["filename"]]  # torchvision wants all
    for name in names:
        path = folder / name
        if not path.is_file():
            return f"{path}: missing (a CIFAR batch file)"
        try:
            with open(path, "rb") as f:
                pickle.load(f, encoding="latin1")
        except Exception as err:
            return f"{path}: truncated or corrupt ({type(err).__name__}: {str(err)[:200]})"
    return f"{folder}: the CIFAR batches could not be read ({type(exc).__name__}: {str(exc)[:200]})"


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
    y = ds.targets.long().clone()
    if len(y) and int(y.max()) >= 10:
        raise DatasetMissingError(f"{raw / FASHION_MNIST_FILES[train][1]}: label {int(y.max())} is not a "
                                  f"Fashion-MNIST class (0-9). {_FMNIST_FIX}")
    return TensorData(ds.data.unsqueeze(1).contiguous(), y, "fashion_mnist", source)


def load_split(name: str, root, train: bool, download: bool = True) -> TensorData:
    """One split of CIFAR-10/100 or Fashion-MNIST as uint8 tensors."""
    check_dataset_name(name)
    root = Path(root)
    if name in ("cifar10", "cifar100"):
        return _load_cifar(name, root, train, download)
    if name == "fashion_mnist":
        return _load_fashion_mnist(root, train, download)
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
    return train, test


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
           "augment_batch", "imagenet_loaders", "EpochLoader"]


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
