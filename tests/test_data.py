import numpy as np
import pytest
import torch
import torchvision.transforms as T

from lthlib import DatasetMissingError, ConfigError
from lthlib import data as D


def test_cifar_pickle_batches_load_through_torchvision_reader(cifar_root):
    train = D.load_split("cifar10", cifar_root, True, download=False)
    test = D.load_split("cifar10", cifar_root, False, download=False)
    assert train.x.shape == (500, 3, 32, 32) and train.x.dtype == torch.uint8
    assert test.x.shape == (100, 3, 32, 32) and train.y.max() < 10
    c100 = D.load_split("cifar100", cifar_root, True, download=False)
    assert c100.x.shape == (500, 3, 32, 32) and c100.y.max() >= 10


def test_fashion_mnist_idx_files_load(fmnist_root):
    train, test = D.load_data("fashion_mnist", fmnist_root, download=False)
    assert train.x.shape == (640, 1, 28, 28) and len(test) == 200


def test_fashion_mnist_from_debian_package_when_installed(tmp_path, monkeypatch):
    if not (D.DEBIAN_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("Debian's dataset-fashion-mnist package is not installed")
    train = D.load_split("fashion_mnist", tmp_path, True, download=False)
    assert train.x.shape == (60000, 1, 28, 28) and "Debian" in train.source
    assert torch.bincount(train.y).tolist() == [6000] * 10


def test_missing_dataset_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    with pytest.raises(DatasetMissingError, match="data_root=.*cifar-10-batches-py"):
        D.load_split("cifar10", tmp_path, True, download=False)
    with pytest.raises(DatasetMissingError, match="dataset-fashion-mnist"):
        D.load_split("fashion_mnist", tmp_path, True, download=False)
    with pytest.raises(DatasetMissingError, match="train/"):
        D.imagenet_loaders(tmp_path, 8)
    with pytest.raises(ConfigError, match="unknown dataset 'mnist2'"):
        D.load_split("mnist2", tmp_path, True)


def test_stratified_subset_is_balanced_and_deterministic():
    y = torch.arange(1000) % 10
    a, b = D.stratified_subset(y, 105, 3), D.stratified_subset(y, 105, 3)
    assert torch.equal(a, b) and len(a) == 105
    counts = torch.bincount(y[a], minlength=10)
    assert counts.max() - counts.min() <= 1
    assert not torch.equal(a, D.stratified_subset(y, 105, 4))


def test_batches_depend_only_on_seed_and_epoch(fmnist_root):
    train, _ = D.load_data("fashion_mnist", fmnist_root, download=False)
    spec = D.DATASETS["fashion_mnist"]
    mk = lambda seed: D.Batches(train, 64, spec.mean, spec.std, True, True, 2, True, seed)
    a, b, c = mk(1), mk(1), mk(2)
    for bt in (a, b, c):
        bt.set_epoch(3)
    xa, ya = next(iter(a))
    xb, yb = next(iter(b))
    xc, yc = next(iter(c))
    assert torch.equal(xa, xb) and torch.equal(ya, yb)
    assert not torch.equal(ya, yc)
    a.set_epoch(4)
    assert not torch.equal(next(iter(a))[1], ya)
    assert sum(len(y) for _, y in a) == len(train)


def test_batched_augmentation_matches_torchvision_transform_distribution():
    """Each output pixel must come from the same crop/flip distribution as RandomCrop(pad)+Flip."""
    size, pad, n = 8, 2, 4000
    img = torch.arange(size * size, dtype=torch.uint8).view(1, 1, size, size) + 1  # unique values, 0 = padding
    g = torch.Generator().manual_seed(0)
    ours = D.augment_batch(img.expand(n, 1, size, size).contiguous(), pad, True, g)
    tv = T.Compose([T.RandomCrop(size, padding=pad), T.RandomHorizontalFlip()])
    torch.manual_seed(0)
    ref = torch.stack([tv(img[0]) for _ in range(n)])
    # compare the distribution of (pixel at a fixed position) over the whole batch
    for pos in [(0, 0), (3, 4), (7, 7)]:
        h1 = torch.bincount(ours[:, 0, pos[0], pos[1]].long(), minlength=size * size + 1).float() / n
        h2 = torch.bincount(ref[:, 0, pos[0], pos[1]].long(), minlength=size * size + 1).float() / n
        assert (h1 - h2).abs().sum() < 0.12, pos  # total-variation distance small (sampling noise ~0.05)
    assert abs(ours.float().mean() - ref.float().mean()) < 1.0
    # every output is an exact crop (shape preserved, values from the padded image)
    assert ours.shape == (n, 1, size, size)


def test_normalization_matches_torchvision(cifar_root):
    train = D.load_split("cifar10", cifar_root, False, download=False)
    spec = D.DATASETS["cifar10"]
    b = D.Batches(train, 10, spec.mean, spec.std, train=False)
    x, _ = next(iter(b))
    ref = T.Normalize(spec.mean, spec.std)(train.x[:10].float() / 255)
    assert torch.allclose(x, ref, atol=1e-5)


def test_imagenet_folder_loaders(tmp_path):
    from PIL import Image
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("n01", "n02"):
            d = tmp_path / split / cls
            d.mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 255, (40, 50, 3), dtype=np.uint8)).save(d / f"{i}.JPEG")
    tl, vl, k = D.imagenet_loaders(tmp_path, 2, workers=0)
    x, y = next(iter(tl))
    assert k == 2 and x.shape == (2, 3, 224, 224)
    assert next(iter(vl))[0].shape[1:] == (3, 224, 224)


def _copy_fmnist(src, dst):
    import shutil
    shutil.copytree(src / "FashionMNIST", dst / "FashionMNIST")
    return dst / "FashionMNIST" / "raw"


@pytest.mark.parametrize("damage, expect", [
    (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated: .* promises"),
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_bytes(__import__("gzip").compress(p.read_bytes())), "not an uncompressed .*gzip-compressed: gunzip it"),
])
def test_a_damaged_fashion_mnist_file_is_named_with_what_to_do(fmnist_root, tmp_path, monkeypatch, damage, expect):
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    raw = _copy_fmnist(fmnist_root, tmp_path)
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"):
        good = (raw / name).read_bytes()
        damage(raw / name)
        with pytest.raises(DatasetMissingError, match=f"{raw / name}: {expect}.*make fashion-mnist"):
            D.load_split("fashion_mnist", tmp_path, True, download=False)
        (raw / name).write_bytes(good)
    assert len(D.load_split("fashion_mnist", tmp_path, True, download=False)) == 640


def test_fashion_mnist_images_and_labels_must_agree(fmnist_root, tmp_path, monkeypatch):
    from conftest import write_idx
    raw = _copy_fmnist(fmnist_root, tmp_path)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(10, dtype=np.uint8))
    with pytest.raises(DatasetMissingError, match="200 images of 28x28 with 10 labels"):
        D.load_split("fashion_mnist", tmp_path, False, download=False)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.full(200, 12, dtype=np.uint8))
    with pytest.raises(DatasetMissingError, match=r"t10k-labels-idx1-ubyte: label 12 is not a fashion_mnist class \(0-9\)"):
        D.load_split("fashion_mnist", tmp_path, False, download=False)


def test_a_truncated_or_missing_cifar_batch_is_named(cifar_root, tmp_path):
    import shutil
    folder = tmp_path / "cifar-10-batches-py"
    shutil.copytree(cifar_root / "cifar-10-batches-py", folder)
    batch = folder / "data_batch_3"
    good = batch.read_bytes()
    batch.write_bytes(good[:500])
    with pytest.raises(DatasetMissingError, match=f"{batch}: truncated or corrupt .*Delete {folder}"):
        D.load_split("cifar10", tmp_path, True, download=False)
    batch.unlink()
    with pytest.raises(DatasetMissingError, match=f"{batch}: missing"):
        D.load_split("cifar10", tmp_path, True, download=False)
    batch.write_bytes(good)
    assert len(D.load_split("cifar10", tmp_path, True, download=False)) == 500


def test_a_full_disk_during_an_atomic_write_names_the_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    import errno
    import os
    from lthlib import runs
    target = tmp_path / "run" / "final.pt"
    runs.atomic_write_text(target, "old")
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data[:3]))  # part of it lands, then the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(runs.os, "write", full)
    with pytest.raises(OSError, match=f"could not write {target} .No space left on device.*free disk space") as err:
        runs.atomic_torch_save({"w": torch.zeros(100)}, target)
    monkeypatch.undo()
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["final.pt"]  # no .final.pt.tmpNNN left
    assert target.read_text() == "old"  # the previous file is untouched


def _batches_of(loader):
    return [(x.clone(), y.clone()) for x, y in loader]


def _augment_as_drawn_per_batch(x, pad, flip, g):
    """The batch-by-batch augmentation the epoch draws must reproduce, written out on its own: row
    offsets, column offsets, then flips, drawn from ``g`` for this batch."""
    b, c, h, w = x.shape
    if pad:
        dy = torch.randint(0, 2 * pad + 1, (b,), generator=g)
        dx = torch.randint(0, 2 * pad + 1, (b,), generator=g)
        xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
        x = torch.stack([xp[i, :, dy[i]:dy[i] + h, dx[i]:dx[i] + w] for i in range(b)])
    if flip:
        f = torch.rand(b, generator=g) < 0.5
        x = torch.stack([img.flip(2) if fi else img for img, fi in zip(x, f)])
    return x


@pytest.mark.parametrize("kw", [dict(), dict(augment=False), dict(pad=0), dict(flip=False), dict(rank=1, world=2)])
def test_epoch_draws_give_the_batches_drawn_batch_by_batch(kw):
    """Batches draws an epoch's order/crops/flips up front (one device copy); every batch must equal the
    batch-by-batch draw from the same generator: permutation, then per batch row, column, flip."""
    g0 = torch.Generator().manual_seed(0)
    data = D.TensorData(torch.randint(0, 256, (150, 3, 8, 8), dtype=torch.uint8, generator=g0),
                        torch.randint(0, 10, (150,), generator=g0), "t", "t")
    b = D.Batches(data, 32, (0.5, 0.4, 0.3), (0.2, 0.2, 0.2), True, seed=3, **kw)
    b.set_epoch(2)
    g = b._generator()
    order = torch.randperm(150, generator=g)
    world, rank = kw.get("world", 1), kw.get("rank", 0)
    got = _batches_of(b)
    assert len(got) == 5
    for i, (x, y) in zip(range(0, 150, 32), got):
        idx = order[i:i + 32]
        xi = data.x[idx]
        if kw.get("augment", True):
            xi = _augment_as_drawn_per_batch(xi, kw.get("pad", 4), kw.get("flip", True), g)
        xi, yi = xi[rank::world], data.y[idx][rank::world]
        assert torch.equal(y, yi) and torch.equal(x, (xi.float() - b.mean) / b.std)


def test_ticket_batches_are_each_tickets_own_batches():
    """A pack's batches: ticket t gets exactly the batches its own data order gives alone."""
    from lthlib import packing
    g0 = torch.Generator().manual_seed(1)
    data = D.TensorData(torch.randint(0, 256, (100, 3, 8, 8), dtype=torch.uint8, generator=g0),
                        torch.randint(0, 10, (100,), generator=g0), "t", "t")
    loaders = [D.Batches(data, 24, (0.5,) * 3, (0.25,) * 3, True, seed=s) for s in (1, 2, 5)]
    index = [2, 0, 0, 1, 2]
    tb = packing.TicketBatches(loaders, index)
    tb.set_epoch(3)
    alone = [_batches_of(b) for b in loaders]
    got = _batches_of(tb)
    assert len(got) == len(alone[0]) == 5
    for k, (x, y) in enumerate(got):
        assert x.shape == (len(alone[0][k][1]), 5, 3, 8, 8) and y.shape == (x.shape[0], 5)
        for t, o in enumerate(index):
            assert torch.equal(x[:, t], alone[o][k][0]) and torch.equal(y[:, t], alone[o][k][1])
    other = D.Batches(data, 16, (0.5,) * 3, (0.25,) * 3, True, seed=9)
    with pytest.raises(ValueError, match="must share data"):
        packing.TicketBatches(loaders + [other], [0, 3])
    copy = D.TensorData(data.x.clone(), data.y.clone(), "t", "t")  # equal values, another tensor
    with pytest.raises(ValueError, match="one tensor on the device"):
        packing.TicketBatches([loaders[0], D.Batches(copy, 24, (0.5,) * 3, (0.25,) * 3, True, seed=7)], [0, 1])


# ----------------------------------------------------------------------------- Tiny-ImageNet
def _tiny(tmp_path, **kw):
    from conftest import make_tiny_imagenet
    return make_tiny_imagenet(tmp_path, **kw) / "tiny-imagenet-200"


def test_tiny_imagenet_spec_states_its_recipe():
    spec = D.DATASETS["tiny_imagenet"]
    assert (spec.channels, spec.size, spec.classes, spec.train_size, spec.test_size) == (3, 64, 200, 100_000, 10_000)
    assert spec.kind == "tensor" and spec.paper_epochs == 160 and spec.similar_threshold == 1.0 and spec.in_paper
    assert (spec.mean, spec.std) == (D.DATASETS["imagenet"].mean, D.DATASETS["imagenet"].std)
    assert "ImageNet-1K's mean/std" in spec.recipe_note and "pad 4" in spec.recipe_note
    assert (spec.pad, spec.flip) == (4, True)


def test_tiny_imagenet_loads_the_official_layout_as_uint8_tensors(tmp_path):
    folder = _tiny(tmp_path)  # 3 classes, 4 train / 2 val images each; wnids.txt in descending order
    train = D.load_split("tiny_imagenet", tmp_path, True, download=False)
    test = D.load_split("tiny_imagenet", tmp_path, False, download=False)
    assert train.x.shape == (12, 3, 64, 64) and train.x.dtype == torch.uint8 and train.y.dtype == torch.long
    assert test.x.shape == (6, 3, 64, 64) and train.name == test.name == "tiny_imagenet"
    # labels follow the sorted wnids: the class listed first in wnids.txt (colour channel 0) is label 2
    assert train.y.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    assert test.y.tolist() == [2, 1, 0, 2, 1, 0]  # val_0..val_5 belong to the listed classes 0, 1, 2, 0, 1, 2
    for x, y in ((train.x, train.y), (test.x, test.y)):
        for i in range(len(y)):
            if not (x is train.x and i == 8):
                assert x[i].float().mean((1, 2)).argmax().item() == (2 - int(y[i])) % 3
    gray = train.x[8]  # n09000000_0.JPEG, saved grayscale: converted to RGB, three equal channels
    assert torch.equal(gray[0], gray[1]) and torch.equal(gray[1], gray[2])
    assert (folder / "decoded-train.npz").is_file() and (folder / "decoded-val.npz").is_file()
    assert "decoded, cached" in train.source and str(folder) in train.source
    sub, _ = D.load_data("tiny_imagenet", tmp_path, n_train=6, download=False)
    assert torch.bincount(sub.y).tolist() == [2, 2, 2]


def test_tiny_imagenet_cache_is_reused_and_redone_when_the_folder_changes(tmp_path, monkeypatch):
    from PIL import Image
    folder = _tiny(tmp_path)
    first = D.load_split("tiny_imagenet", tmp_path, True, download=False)

    def no_decode(*a):
        raise AssertionError("decoded again")
    monkeypatch.setattr(D, "_decode_images", no_decode)
    again = D.load_split("tiny_imagenet", tmp_path, True, download=False)
    assert torch.equal(first.x, again.x) and torch.equal(first.y, again.y) and "cached decode" in again.source
    monkeypatch.undo()
    wnid = sorted((folder / "train").iterdir())[1].name
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(folder / "train" / wnid / "images" / "extra.JPEG")
    grown = D.load_split("tiny_imagenet", tmp_path, True, download=False)
    assert len(grown) == 13 and torch.bincount(grown.y).tolist() == [4, 5, 4] and "decoded, cached" in grown.source
    assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no temporary left


def test_tiny_imagenet_loads_when_the_cache_cannot_be_written(tmp_path, monkeypatch):
    folder = _tiny(tmp_path)

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(D.os, "replace", refuse)
    with pytest.warns(UserWarning, match="could not cache"):
        data = D.load_split("tiny_imagenet", tmp_path, False, download=False)
    assert len(data) == 6 and "not cached" in data.source
    assert not any(p.name.endswith(".npz") or ".tmp" in p.name for p in folder.iterdir())


def _append(path, text):
    path.write_text(path.read_text() + text)


def _bad_image(folder, content):
    wnid = sorted((folder / "train").iterdir())[0].name
    path = sorted((folder / "train" / wnid / "images").iterdir())[1]
    if content == "small":
        from PIL import Image
        Image.fromarray(np.zeros((32, 48, 3), np.uint8)).save(path, format="JPEG")
    else:
        path.write_bytes(b"not a JPEG")
    return path


TINY_DAMAGE = [  # (what is wrong, split, damage(folder) -> the path the error must name, message)
    ("no folder", True, lambda f: __import__("shutil").rmtree(f) or f, "no such folder"),
    ("no wnids.txt", True, lambda f: (f / "wnids.txt").unlink() or f / "wnids.txt", "missing .the class wnids"),
    ("a wnid without images", True, lambda f: _append(f / "wnids.txt", "n07000000\n") or
     f / "train" / "n07000000" / "images", "no \\*.JPEG images of class n07000000"),
    ("no annotations", False, lambda f: (f / "val" / "val_annotations.txt").unlink() or
     f / "val" / "val_annotations.txt", "missing .the val labels"),
    ("unknown wnid", False, lambda f: _append(f / "val" / "val_annotations.txt", "val_0.JPEG\tn01234567\t0\t0\t9\t9\n")
     or f / "val" / "val_annotations.txt", "line 7 names wnid 'n01234567', which is not in wnids.txt"),
    ("missing file", False, lambda f: _append(f / "val" / "val_annotations.txt", "val_99.JPEG\tn09000000\t0\t0\t9\t9\n")
     or f / "val" / "val_annotations.txt", "line 7 names .*val_99.JPEG, which does not exist"),
    ("malformed line", False, lambda f: _append(f / "val" / "val_annotations.txt", "val_0.JPEG n09000000\n")
     or f / "val" / "val_annotations.txt", "line 7 .* is not 'file<TAB>wnid"),
    ("wrong size", True, lambda f: _bad_image(f, "small"), "a 48x32 image; Tiny-ImageNet's are 64x64"),
    ("not an image", True, lambda f: _bad_image(f, "junk"), "not a readable image"),
]


@pytest.mark.parametrize("what,train,damage,expect", TINY_DAMAGE, ids=[d[0] for d in TINY_DAMAGE])
def test_a_missing_or_malformed_tiny_imagenet_folder_is_named(tmp_path, what, train, damage, expect):
    import re
    path = damage(_tiny(tmp_path))
    with pytest.raises(DatasetMissingError, match=f"{re.escape(str(path))}: {expect}.*unzip .*tiny-imagenet-200.zip"):
        D.load_split("tiny_imagenet", tmp_path, train, download=True)


def test_tiny_imagenet_experiments_validate_with_its_models():
    import lthlib
    for model in ("resnet18_tiny", "resnet50_tiny", "resnet18_cifar"):
        assert lthlib.load(None, {"dataset": "tiny_imagenet", "model": model}).model == model
    with pytest.raises(ConfigError, match="'resnet18' is a model for imagenet images.*resnet18_tiny"):
        lthlib.load(None, {"dataset": "tiny_imagenet", "model": "resnet18"})


# ----------------------------------------------------------------------------- content checks (issue 23, item 9)
def test_fashion_mnist_labels_must_be_the_datasets(fmnist_root, tmp_path, monkeypatch):
    """All-zero or out-of-range labels, or images of another shape, are refused naming the file (they
    trained silently before)."""
    from conftest import write_idx
    monkeypatch.setattr(D, "DEBIAN_FASHION_MNIST", tmp_path / "nowhere")
    raw = _copy_fmnist(fmnist_root, tmp_path)
    labels = raw / "train-labels-idx1-ubyte"
    good = labels.read_bytes()
    write_idx(labels, np.zeros(640, dtype=np.uint8))
    with pytest.raises(DatasetMissingError, match=f"{labels}: the training labels hold 1 of the 10 classes of "
                                                  r"fashion_mnist \(none of class 1, 2, 3"):
        D.load_split("fashion_mnist", tmp_path, True, download=False)
    write_idx(labels, np.arange(640) % 11)
    with pytest.raises(DatasetMissingError, match=f"{labels}: label 10 is not a fashion_mnist class"):
        D.load_split("fashion_mnist", tmp_path, True, download=False)
    labels.write_bytes(good)
    images = raw / "train-images-idx3-ubyte"
    write_idx(images, np.zeros((640, 32, 32), dtype=np.uint8))
    with pytest.raises(DatasetMissingError, match=f"{images}: 640 images of 32x32"):
        D.load_split("fashion_mnist", tmp_path, True, download=False)


def test_a_cifar_batch_of_the_wrong_shape_or_labels_is_named(cifar_root, tmp_path):
    import pickle
    import shutil
    folder = tmp_path / "cifar-10-batches-py"
    shutil.copytree(cifar_root / "cifar-10-batches-py", folder)
    batch = folder / "data_batch_2"
    entry = pickle.loads(batch.read_bytes())
    wrong = {"rows": {**entry, "data": np.zeros((100, 3000), dtype=np.uint8)},
             "labels": {**entry, "labels": entry["labels"][:-1]},
             "range": {**entry, "labels": [10] * 100}}
    expect = {"rows": r"its data is uint8 of shape \(100, 3000\)", "labels": "100 images with 99 labels",
              "range": r"label 10 is not a class \(0-9\)"}
    for what, bad in wrong.items():
        batch.write_bytes(pickle.dumps(bad))
        with pytest.raises(DatasetMissingError, match=f"{batch}: {expect[what]}"):
            D.load_split("cifar10", tmp_path, True, download=False)
    for b in folder.glob("data_batch_*"):  # every label 0: the batches read, the split is not CIFAR-10's
        b.write_bytes(pickle.dumps({**entry, "labels": [0] * 100}))
    with pytest.raises(DatasetMissingError, match=f"{folder}: the training labels hold 1 of the 10 classes"):
        D.load_split("cifar10", tmp_path, True, download=False)


def test_check_split_refuses_what_a_dataset_does_not_hold():
    y = torch.arange(20) % 10
    ok = D.TensorData(torch.zeros(20, 1, 28, 28, dtype=torch.uint8), y, "fashion_mnist", "src")
    assert D.check_split(ok, True, "f") is ok
    bad = {"float images": (ok.x.float(), y, "the training images are 20 of"),
           "3 channels": (torch.zeros(20, 3, 28, 28, dtype=torch.uint8), y, r"uint8 images of 1 x 28 x 28"),
           "no images": (ok.x[:0], y[:0], "the training images are 0 of"),
           "labels short": (ok.x, y[:-1], "19 training labels"),
           "negative": (ok.x, y - 1, "label -1 is not"),
           "one class": (ok.x, torch.zeros(20, dtype=torch.long), "hold 1 of the 10 classes")}
    for what, (x, labels, match) in bad.items():
        with pytest.raises(DatasetMissingError, match=match):
            D.check_split(D.TensorData(x, labels, "fashion_mnist", "src"), True, "f")
    # a test split need not hold every class (a stratified subset of a few images)
    D.check_split(D.TensorData(ok.x[:3], y[:3], "fashion_mnist", "src"), False, "f")


def test_the_loaded_data_is_named_by_its_content_digest(fmnist_root, tmp_path):
    """load_data's source (recorded as a run's data_source) ends with the sha256 of the arrays trained on:
    the same files give the same digest, a changed pixel or another subset another."""
    from conftest import write_idx
    train, test = D.load_data("fashion_mnist", fmnist_root, download=False)
    assert train.source.endswith(f"[sha256 {D.digest(train)}]") and test.source.endswith(f"[sha256 {D.digest(test)}]")
    assert len(D.digest(train)) == 64 and D.digest(train) != D.digest(test)
    again, _ = D.load_data("fashion_mnist", fmnist_root, download=False)
    assert again.source == train.source
    sub, _ = D.load_data("fashion_mnist", fmnist_root, n_train=100, download=False)
    assert sub.source != train.source
    raw = _copy_fmnist(fmnist_root, tmp_path)
    x = train.x[:, 0].numpy().copy()
    x[5, 3, 3] ^= 1
    write_idx(raw / "train-images-idx3-ubyte", x)
    changed, _ = D.load_data("fashion_mnist", tmp_path, download=False)
    assert D.digest(changed) != D.digest(train) and changed.source != train.source
