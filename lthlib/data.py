"""Datasets: CIFAR-10/100, Fashion-MNIST (whole dataset as one uint8 tensor, batched augmentation on
the training device) and ImageNet (torchvision ImageFolder + DataLoader).

Datasets are read with torchvision's own classes from ``data_root``. When missing they are
downloaded if the machine is online; offline, Fashion-MNIST is taken from Debian's
``dataset-fashion-mnist`` package; otherwise a DatasetMissingError says where to put the files.
"""
from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision import datasets as tvd

from .errors import DatasetMissingError, ConfigError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

# name -> normalization, geometry and the augmentation the recipe uses
DATASETS = {
    "cifar10": dict(mean=(0.4914, 0.4822, 0.4465), std=(0.2023, 0.1994, 0.2010), channels=3, size=32,
                    classes=10, pad=4, flip=True),
    "cifar100": dict(mean=(0.50708, 0.48655, 0.44092), std=(0.26733, 0.25644, 0.27615), channels=3,
                     size=32, classes=100, pad=4, flip=True),
    "fashion_mnist": dict(mean=(0.2860,), std=(0.3530,), channels=1, size=28, classes=10, pad=2,
                          flip=True),
    "imagenet": dict(mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225), channels=3, size=224,
                     classes=1000, pad=0, flip=True),
}


def check_dataset_name(name: str, source: str = "dataset") -> dict:
    if name not in DATASETS:
        raise ConfigError(f"{source}: unknown dataset {name!r}. Known: {', '.join(DATASETS)}.")
    return DATASETS[name]


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


class _CIFAR10(tvd.CIFAR10):
    """torchvision's CIFAR-10 reader without the md5 check, so a copy in the same on-disk format
    (or one re-packed by a mirror) loads; ``official_md5`` records whether the checksums matched."""
    train_list = [[f, None] for f, _ in tvd.CIFAR10.train_list]
    test_list = [[f, None] for f, _ in tvd.CIFAR10.test_list]
    meta = {**tvd.CIFAR10.meta, "md5": None}


class _CIFAR100(tvd.CIFAR100):
    train_list = [[f, None] for f, _ in tvd.CIFAR100.train_list]
    test_list = [[f, None] for f, _ in tvd.CIFAR100.test_list]
    meta = {**tvd.CIFAR100.meta, "md5": None}


def _missing(name: str, root: Path, hint: str) -> DatasetMissingError:
    return DatasetMissingError(
        f"data_root={str(root)!r}: dataset {name!r} not found there and it could not be downloaded. {hint}")


def _load_cifar(name: str, root: Path, train: bool, download: bool) -> TensorData:
    cls, official, folder = ((_CIFAR10, tvd.CIFAR10, "cifar-10-batches-py") if name == "cifar10"
                             else (_CIFAR100, tvd.CIFAR100, "cifar-100-python"))
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
    except Exception as exc:
        raise DatasetMissingError(f"{root / folder}: could not read the CIFAR batches ({exc}). "
                                  f"Delete the folder and download again.") from exc
    x = torch.from_numpy(ds.data).permute(0, 3, 1, 2).contiguous()
    return TensorData(x, torch.tensor(ds.targets, dtype=torch.long), name, str(root / folder))


def _fashion_mnist_from_debian(root: Path) -> bool:
    """Gunzip the Debian package's IDX files into ROOT/FashionMNIST/raw (torchvision reads them
    uncompressed). Returns False when the package is not installed."""
    files = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    if not all((DEBIAN_FASHION_MNIST / f"{f}.gz").exists() for f in files):
        return False
    raw = root / "FashionMNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for f in files:
        if not (raw / f).exists():
            tmp = raw / f".{f}.tmp{os.getpid()}"
            with gzip.open(DEBIAN_FASHION_MNIST / f"{f}.gz") as src, open(tmp, "wb") as dst:
                shutil.copyfileobj(src, dst)
            tmp.rename(raw / f)
    return True


def _load_fashion_mnist(root: Path, train: bool, download: bool) -> TensorData:
    source = str(root / "FashionMNIST" / "raw")
    try:
        ds = tvd.FashionMNIST(str(root), train=train, download=False)
    except RuntimeError:
        ds = None
    if ds is None and _fashion_mnist_from_debian(root):
        ds, source = tvd.FashionMNIST(str(root), train=train, download=False), f"Debian package -> {source}"
    if ds is None and download:
        try:
            ds = tvd.FashionMNIST(str(root), train=train, download=True)
            source = f"download -> {source}"
        except Exception:
            ds = None
    if ds is None:
        raise _missing("fashion_mnist", root,
                       "Install Debian's package (`apt-get install dataset-fashion-mnist`), or put the four "
                       f"uncompressed IDX files in {root / 'FashionMNIST' / 'raw'}/, or run once with internet.")
    return TensorData(ds.data.unsqueeze(1).contiguous(), ds.targets.long().clone(), "fashion_mnist", source)


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
    exactly the batches an uninterrupted run would."""

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

    def __iter__(self):
        n = len(self.data)
        if self.train:
            g = self._generator()
            order = torch.randperm(n, generator=g)
        else:
            g, order = None, torch.arange(n)
        order = order.to(self.device)
        for i in range(0, n, self.batch_size):
            idx = order[i:i + self.batch_size]
            x = self.data.x[idx]
            if self.augment:  # the whole global batch, so every rank's slice matches a 1-process run
                x = augment_batch(x, self.pad, self.flip, g)
            y = self.data.y[idx]
            if self.world > 1:
                x, y = x[self.rank::self.world], y[self.rank::self.world]
            x = ((x.float() - self.mean) / self.std).contiguous(memory_format=self.memory_format)
            yield x, y


def augment_batch(x: torch.Tensor, pad: int, flip: bool, g: torch.Generator) -> torch.Tensor:
    """Random crop of the original size after zero padding by ``pad`` + random horizontal flip, per
    image, for a uint8 batch [B, C, H, W]; random numbers come from the CPU generator ``g``."""
    b, c, h, w = x.shape
    dev = x.device
    if pad:
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=g).to(dev)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=g).to(dev)
        rows = (dy[:, None] + torch.arange(h, device=dev))[:, None, :, None]
        cols = (dx[:, None] + torch.arange(w, device=dev))[:, None, None, :]
        x = xp[torch.arange(b, device=dev)[:, None, None, None], torch.arange(c, device=dev)[None, :, None, None],
               rows, cols]
    if flip:
        f = (torch.rand(b, generator=g) < 0.5).to(dev)
        x = torch.where(f[:, None, None, None], x.flip(3), x)
    return x


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
    norm = T.Normalize(spec["mean"], spec["std"])
    val_tf = T.Compose([T.Resize(256), T.CenterCrop(224), T.ToTensor(), norm])
    train_tf = T.Compose([T.RandomResizedCrop(224), T.RandomHorizontalFlip(), T.ToTensor(), norm]) if augment \
        else val_tf
    train = tvd.ImageFolder(str(root / "train"), train_tf)
    val = tvd.ImageFolder(str(root / "val"), val_tf)
    t_sampler = DistributedSampler(train, world, rank, shuffle=True, seed=seed, drop_last=True)
    v_sampler = DistributedSampler(val, world, rank, shuffle=False) if world > 1 else None
    pin = torch.cuda.is_available()
    per_rank = max(1, batch_size // world)
    tl = DataLoader(train, per_rank, sampler=t_sampler, num_workers=workers, pin_memory=pin, drop_last=True,
                    persistent_workers=workers > 0)
    vl = DataLoader(val, max(1, (eval_batch_size or batch_size) // world), sampler=v_sampler, shuffle=False,
                    num_workers=workers, pin_memory=pin)
    return EpochLoader(tl, t_sampler), vl, len(train.classes)


__all__ = ["DATASETS", "TensorData", "Batches", "load_data", "load_split", "stratified_subset",
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
