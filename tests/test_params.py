import pytest

import lthlib as L
from lthlib.params import load_params_file, make_experiment, from_namespace


def write(tmp_path, text, name="grid.yaml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_valid_file_loads(tmp_path):
    p = write(tmp_path, "name: g\nmodel: resnet20\ndataset: cifar10\nlrs: [0.1, 0.01]\nseeds: [1, 2]\nepochs: 3\n")
    exp = make_experiment(p, seed=2)
    assert exp.model == "resnet20" and exp.lrs == [0.1, 0.01] and exp.seed == 2 and exp.epochs == 3


@pytest.mark.parametrize("text,match", [
    ("modle: resnet20\n", r"grid\.yaml: unknown key 'modle'"),
    ("epochs: ten\n", r"grid\.yaml: key 'epochs' must be a int, got 'ten'"),
    ("epochs: 2.5\n", r"key 'epochs' must be a int"),
    ("lr: true\n", r"key 'lr' must be a number"),
    ("lrs: 0.1\n", r"key 'lrs' must be a list of numbers"),
    ("model: resnet21\n", r"key 'model' = 'resnet21' is not one of"),
    ("sparsities: [0.5, 1.0]\n", r"key 'sparsities' values must lie in \[0, 1\)"),
    ("settings: [lt_imp, lt_xmp]\n", r"unknown setting 'lt_xmp'"),
    ("epochs: [1\n", r"grid\.yaml: not valid YAML"),
    ("- a\n- b\n", r"grid\.yaml: a params file must be a mapping"),
    ("dataset: imagenet\nmodel: resnet20\n", r"ImageNet runs use resnet18 or resnet50"),
])
def test_bad_params_files_name_the_file_and_key(tmp_path, text, match):
    with pytest.raises(L.ConfigError, match=match):
        make_experiment(write(tmp_path, text))


def test_missing_file_and_bad_override(tmp_path):
    with pytest.raises(L.ConfigError, match="nope.yaml: params file not found"):
        load_params_file(tmp_path / "nope.yaml")
    with pytest.raises(L.ConfigError, match=r"\(overrides\): key 'seed' must be a int"):
        make_experiment(None, seed="1")


def test_from_namespace_takes_schema_keys_and_checks_the_file(tmp_path):
    ns = {"model": "lenet5", "lr": 0.01, "seed": 3, "x": object(), "epochs": 2}
    exp = from_namespace(ns)
    assert exp.lr == 0.01 and exp.seed == 3 and exp.epochs == 2
    bad = write(tmp_path, "epochz: 3\n")
    with pytest.raises(L.ConfigError, match="grid.yaml: unknown key 'epochz'. Did you mean 'epochs'"):
        from_namespace(ns, bad)


def test_repo_params_files_are_valid():
    from pathlib import Path
    files = sorted(Path(__file__).resolve().parent.parent.joinpath("params").glob("*.yaml"))
    assert files, "params/*.yaml missing"
    for f in files:
        make_experiment(f)
