"""Fixtures: small datasets written in the exact on-disk formats torchvision reads, and a tiny
experiment factory. Images carry a class-dependent pattern so a model can learn something."""
from __future__ import annotations

import os
import pickle
import shutil
import struct
import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch

import lthlib

ROOT = Path(__file__).resolve().parent.parent
# an outer make's (`make -jN test`) variables would reach every make a test starts: its -j, its jobserver
MAKE_ENV = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")
# the per-user state of the tools the tests run (Jupyter, IPython, matplotlib, the XDG cache and config),
# as the Makefile's keep_state names it: each test session, and each pytest-xdist worker, has its own
STATE_DIRS = {"JUPYTER_CONFIG_DIR": "jupyter/config", "JUPYTER_DATA_DIR": "jupyter/data",
              "JUPYTER_RUNTIME_DIR": "jupyter/runtime", "IPYTHONDIR": "ipython", "MPLCONFIGDIR": "matplotlib",
              "XDG_CACHE_HOME": "cache", "XDG_CONFIG_HOME": "config", "TORCHINDUCTOR_CACHE_DIR": "torchinductor",
              "TRITON_CACHE_DIR": "triton"}


def pytest_configure(config):
    """Before collection (the test modules copy os.environ at import): drop an outer make's variables, give
    this process (the session, or one pytest-xdist worker) its own state folders -- the tests never write
    the user's home, and two workers never share a Jupyter nbsignatures.db or an IPython history -- and
    stop when .venv's stamp is older than requirements.txt or pyproject.toml -- the tests' `make grid` and
    `make report` would reinstall into the venv the other pytest-xdist worker imports from."""
    for k in MAKE_ENV:
        os.environ.pop(k, None)
    state = tempfile.mkdtemp(prefix=f"lthlib-state-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}-")
    config.add_cleanup(lambda: shutil.rmtree(state, ignore_errors=True))
    for var, sub in STATE_DIRS.items():
        os.environ[var] = os.path.join(state, sub)
    stamp = ROOT / ".venv" / ".installed"
    stale = [n for n in ("requirements.txt", "pyproject.toml")
             if stamp.exists() and (ROOT / n).stat().st_mtime > stamp.stat().st_mtime]
    if stale:
        pytest.exit(f"{stamp}: older than {' and '.join(stale)}; run `make setup` (or `make test`, which does) "
                    f"first", returncode=4)


# the settings LeNet-5 runs (it has no width scaling for SDT; tests of SDT and WR use a ResNet)
CLASSIC_SETTINGS = [s for s in lthlib.SETTINGS if s not in ("sdt", "wr_imp", "wr_omp")]


def _images(n: int, size: int, channels: int, classes: int, seed: int):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    rng.shuffle(y)
    x = rng.integers(0, 90, size=(n, size, size, channels), dtype=np.int64)
    for i, c in enumerate(y):  # a bright bar whose position encodes the class
        r = (c * size) // classes
        x[i, r:r + max(2, size // classes), :, :] += 150
    return np.clip(x, 0, 255).astype(np.uint8), y.astype(np.int64)


def write_idx(path: Path, arr: np.ndarray) -> None:
    """Write an IDX file (big-endian magic + dims + uint8 data), as in the (Fashion-)MNIST release."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dims = arr.shape
    with open(path, "wb") as f:
        f.write(struct.pack(">HBB", 0, 0x08, len(dims)))
        f.write(struct.pack(">" + "I" * len(dims), *dims))
        f.write(arr.astype(np.uint8).tobytes())


def make_fashion_mnist(root: Path, n_train=640, n_test=200) -> Path:
    raw = root / "FashionMNIST" / "raw"
    for split, n, seed in (("train", n_train, 0), ("t10k", n_test, 1)):
        x, y = _images(n, 28, 1, 10, seed)
        write_idx(raw / f"{split}-images-idx3-ubyte", x[..., 0])
        write_idx(raw / f"{split}-labels-idx1-ubyte", y)
    return root


def make_cifar(root: Path, name="cifar10", n_per_batch=100, n_test=100) -> Path:
    """CIFAR python-pickle batches (data: N x 3072 uint8 rows, channel-major; labels list)."""
    classes = 10 if name == "cifar10" else 100
    folder = root / ("cifar-10-batches-py" if name == "cifar10" else "cifar-100-python")
    folder.mkdir(parents=True, exist_ok=True)
    label_key = "labels" if name == "cifar10" else "fine_labels"

    def dump(fname, n, seed):
        x, y = _images(n, 32, 3, classes, seed)
        rows = x.transpose(0, 3, 1, 2).reshape(n, -1)
        with open(folder / fname, "wb") as f:
            pickle.dump({"batch_label": fname, "data": rows,
                         label_key: y.tolist()}, f)
    if name == "cifar10":
        for i in range(1, 6):
            dump(f"data_batch_{i}", n_per_batch, i)
        dump("test_batch", n_test, 99)
        meta = {"label_names": [f"c{i}" for i in range(10)]}
        with open(folder / "batches.meta", "wb") as f:
            pickle.dump(meta, f)
    else:
        dump("train", n_per_batch * 5, 1)
        dump("test", n_test, 99)
        with open(folder / "meta", "wb") as f:
            pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)]}, f)
    return root


@pytest.fixture(scope="session")
def fmnist_root(tmp_path_factory) -> Path:
    return make_fashion_mnist(tmp_path_factory.mktemp("fmnist"))


@pytest.fixture(scope="session")
def cifar_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    make_cifar(root, "cifar10")
    make_cifar(root, "cifar100")
    return root


@pytest.fixture
def tiny_exp(fmnist_root, tmp_path):
    """A factory of tiny, fast experiments on the generated Fashion-MNIST files."""
    def make(**kw):
        base = dict(name="t", model="lenet5", dataset="fashion_mnist", data_root=str(fmnist_root), download=False,
                    epochs=2, batch_size=64, lr=0.05, imp_rounds=2, sparsities=[0.5], threads=1,
                    out_root=str(tmp_path / "outputs"), device="cpu", settings=list(CLASSIC_SETTINGS))
        base.update(kw)
        return lthlib.make_experiment(None, **base)
    return make


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)
    yield


def make_imagefolder(root: Path, classes=2, n_train=8, n_val=4) -> Path:
    """ImageNet layout: root/{train,val}/<wnid>/*.JPEG, class-dependent colour so it is learnable."""
    from PIL import Image
    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                img = rng.integers(0, 200, (40, 48, 3)).astype(np.uint8)  # textured: well-conditioned BN
                img[..., c % 3] += 55
                Image.fromarray(img).save(d / f"{split}_{c}_{i}.JPEG")
    return root


@pytest.fixture(scope="session")
def imagenet_root(tmp_path_factory) -> Path:
    return make_imagefolder(tmp_path_factory.mktemp("imagenet"))


def make_tiny_imagenet(root: Path, classes=3, n_train=4, n_val=2) -> Path:
    """Tiny-ImageNet as the official archive unpacks it: root/tiny-imagenet-200/ with wnids.txt (not in
    sorted order), train/<wnid>/images/<wnid>_<i>.JPEG (+ the <wnid>_boxes.txt the real set has),
    val/images/val_<i>.JPEG and val/val_annotations.txt (file, wnid, x, y, w, h; tab-separated). 64x64
    JPEGs with a class-dependent colour; the first training image of the first listed class is
    grayscale, as some in the real set. ``n_train`` / ``n_val`` are per class."""
    from PIL import Image
    rng = np.random.default_rng(0)
    folder = root / "tiny-imagenet-200"
    wnids = [f"n{9_000_000 - 1000 * c:08d}" for c in range(classes)]  # descending: wnids.txt order != sorted
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))

    def image(c):
        img = rng.integers(0, 150, (64, 64, 3)).astype(np.uint8)
        img[..., c % 3] += 100
        return img
    for c, wnid in enumerate(wnids):
        d = folder / "train" / wnid / "images"
        d.mkdir(parents=True, exist_ok=True)
        boxes = []
        for i in range(n_train):
            img = Image.fromarray(image(c))
            (img.convert("L") if c == 0 and i == 0 else img).save(d / f"{wnid}_{i}.JPEG")
            boxes.append(f"{wnid}_{i}.JPEG\t0\t0\t63\t63\n")
        (folder / "train" / wnid / f"{wnid}_boxes.txt").write_text("".join(boxes))
    val = folder / "val" / "images"
    val.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(classes * n_val):
        c = i % classes
        Image.fromarray(image(c)).save(val / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[c]}\t{i % 7}\t3\t60\t58\n")
    (folder / "val" / "val_annotations.txt").write_text("".join(lines))
    return root
