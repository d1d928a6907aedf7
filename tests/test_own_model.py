"""Your own model (issue 22 item 10): a model registered with lthlib.ownmodels.register_model -- in a
module a params file names -- trains through the engine and prunes only its prunable set; its prunable
set is derived by the paper's rule or given; a bad registration is a clear error naming the file and key."""
from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pytest
import torch
import torch.nn as nn

import lthlib
from lthlib import ConfigError, params, tickets
from lthlib.models import BUILTIN, MODELS, build_model, derive_profile, load_profile
from lthlib.ownmodels import (auto_prunable, describe, import_model_module, register_model, registered_by,
                              unregister_model)

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = "tests/own_model_example.py"  # as a params file names it: relative to the project root


def _forget(module_names=()):
    """Unregister every model not built in, and drop ``module_names`` from sys.modules (the next
    import runs them again), so no test sees another's registrations."""
    for name in [n for n in MODELS if n not in BUILTIN]:
        unregister_model(name)
    for m in [m for m in sys.modules if m.startswith("lthlib_own_") or m in module_names]:
        del sys.modules[m]


@pytest.fixture
def clean():
    _forget()
    yield
    _forget(("own_model_example", "tests.own_model_example"))


@pytest.fixture
def example(clean):
    return import_model_module(EXAMPLE, "test")


class Net(nn.Module):
    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        self.stem = nn.Conv2d(in_channels, 2, 3)
        self.head = nn.Linear(2 * 26 * 26, num_classes)

    def forward(self, x):
        return self.head(self.stem(x).flatten(1))


# ----------------------------------------------------------------------------- the prunable set
def test_the_default_rule_is_the_papers_profiles():
    """Every Conv/Linear weight but the stem conv's and the classifier's: the built-in profiles, but
    for the official wide ResNet-32, whose shortcut convs the paper keeps dense."""
    differ = []
    for name in sorted(BUILTIN):
        c, s = MODELS[name].input
        with torch.device("meta"):
            model = MODELS[name].build(c, 10, s)
        if auto_prunable(model) != load_profile(name):
            differ.append(name)
    assert differ == ["resnet32_wide_official"]


def test_registered_models_hold_their_prunable_sets(example):
    assert sorted(registered_by(example)) == ["own_tiny", "own_tiny_fc"]
    assert load_profile("own_tiny") == ["conv2.weight", "fc1.weight"]  # derived: not the stem, not the classifier
    assert load_profile("own_tiny_fc") == ["fc1.weight"]  # given
    assert derive_profile("own_tiny") == load_profile("own_tiny")  # its rule agrees (SDT counts by it)
    assert derive_profile("own_tiny_fc") == ["fc1.weight"]
    first = MODELS["own_tiny"]
    assert import_model_module(EXAMPLE, "test") is example and MODELS["own_tiny"] is first  # once per process
    assert MODELS["own_tiny"].origin == EXAMPLE
    out = build_model("own_tiny", 1, 7, 28, init_seed=0)(torch.zeros(2, 1, 28, 28))
    assert out.shape == (2, 7)  # built for the dataset's classes
    text = describe("own_tiny")
    assert "prune conv2.weight (8, 4, 3, 3)" in text and "kept dense: conv1.weight" in text


def test_a_rule_gives_the_prunable_set(clean):
    register_model("own_rule", input=(1, 28), prunable=lambda n, p: n == "head.weight")(Net)
    assert load_profile("own_rule") == ["head.weight"]


# ----------------------------------------------------------------------------- trains and prunes through the engine
def test_own_model_trains_and_prunes_only_its_prunable_set(example, tiny_exp):
    exp = tiny_exp(model="own_tiny_fc", epochs=1, n_train=200, n_test=100, sparsities=[0.5],
                   settings=["pretrain", "lt_omp"])
    [dense] = lthlib.run_setting(exp, "pretrain")
    [rd] = lthlib.run_setting(exp, "lt_omp")
    mask, final = rd.load_mask(), rd.load_final()
    assert list(mask) == ["fc1.weight"]
    assert mask["fc1.weight"].float().mean().item() == pytest.approx(0.5, abs=1e-3)
    assert torch.equal(final["fc1.weight"][~mask["fc1.weight"]], torch.zeros(int((~mask["fc1.weight"]).sum())))
    for name in ("conv1.weight", "conv2.weight", "fc2.weight"):  # dense: every weight trained
        assert bool((final[name] != 0).all()) and not torch.equal(final[name], dense.load_init()[name])
    ident = rd.read_config()["identity"]
    assert ident["model"] == "own_tiny_fc" and ident["init"] == MODELS["own_tiny_fc"].init_tag
    ticket = tickets.load_run(rd.path)  # your ticket out, of your own model
    assert isinstance(ticket.model, example.OwnTiny) and list(ticket.mask) == ["fc1.weight"]


@pytest.mark.skipif("model_module" not in params.FIELDS, reason="params.py has no model_module key yet")
def test_a_run_of_your_model_loads_in_a_process_that_never_registered_it(example, tiny_exp):
    """The run's config.json records model_module: load_run imports it (lthlib-runs, a fresh notebook)."""
    exp = tiny_exp(model="own_tiny", model_module=EXAMPLE, epochs=1, n_train=100, n_test=50,
                   settings=["pretrain"])
    [rd] = lthlib.run_setting(exp, "pretrain")
    _forget(("own_model_example",))
    assert tickets.load_run(rd.path).model.fc1.weight.shape == (32, 392)


def test_a_changed_network_changes_the_identity_tag(clean):
    register_model("own_v", input=(1, 28), prunable=["head.weight"])(Net)
    first = MODELS["own_v"].init_tag
    register_model("own_v", input=(1, 28), prunable=["head.weight"], version="init 2")(Net)  # the same builder again: replaced
    assert MODELS["own_v"].init_tag != first

    class Wider(Net):
        def __init__(self, in_channels=1, num_classes=10):
            super().__init__(in_channels, num_classes)
            self.stem = nn.Conv2d(in_channels, 2, 5)
    register_model("own_w", input=(1, 28), prunable=["head.weight"])(Wider)
    register_model("own_n", input=(1, 28), prunable=["head.weight"])(Net)
    assert MODELS["own_w"].init_tag != MODELS["own_n"].init_tag


# ----------------------------------------------------------------------------- the module a params file names
def test_a_dotted_module_name_is_imported_from_the_project_root(clean, monkeypatch):
    away = [p for p in sys.path if p and Path(p).resolve() != ROOT]  # found only by the project-root search
    monkeypatch.setattr(sys, "path", away)
    monkeypatch.chdir(ROOT / "notebooks")
    module = import_model_module("tests.own_model_example", "grid.yaml")
    assert sorted(registered_by(module)) == ["own_tiny", "own_tiny_fc"]
    assert import_model_module("tests.own_model_example", "grid.yaml") is module  # once per process


@pytest.mark.skipif("model_module" not in params.FIELDS, reason="params.py has no model_module key yet")
def test_a_params_file_alone_registers_the_model(clean, tmp_path, fmnist_root):
    grid = tmp_path / "own.yaml"
    grid.write_text(f"model: own_tiny\nmodel_module: {EXAMPLE}\ndataset: fashion_mnist\n"
                    f"data_root: {fmnist_root}\n")
    assert "own_tiny" not in MODELS
    exp = lthlib.load(grid)
    assert exp.model == "own_tiny" and load_profile("own_tiny") == ["conv2.weight", "fc1.weight"]


@pytest.mark.skipif("model_module" not in params.FIELDS, reason="params.py has no model_module key yet")
def test_an_unpickled_experiment_registers_the_model(example, tiny_exp):
    """A spawned worker (workers > 1) receives its cell pickled: unpickling imports model_module."""
    blob = pickle.dumps(tiny_exp(model="own_tiny", model_module=EXAMPLE))
    _forget(("own_model_example",))
    assert "own_tiny" not in MODELS
    assert pickle.loads(blob).model == "own_tiny" and load_profile("own_tiny") == ["conv2.weight", "fc1.weight"]


def test_a_relative_file_is_found_from_another_folder(clean, monkeypatch):
    """A notebook opened from notebooks/ reads the params file's path from the project root."""
    monkeypatch.chdir(ROOT / "notebooks")
    import_model_module(EXAMPLE, "grid.yaml")
    assert load_profile("own_tiny") == ["conv2.weight", "fc1.weight"]


# ----------------------------------------------------------------------------- bad registrations
def test_a_duplicate_name_is_an_error_naming_both_files(example):
    with pytest.raises(ConfigError, match=r"test_own_model.py: register_model\('resnet20'\): duplicate model "
                                          r"name 'resnet20': it is one of lthlib's own"):
        register_model("resnet20", input=(1, 28))(Net)
    with pytest.raises(ConfigError, match=r"test_own_model.py: register_model\('own_tiny'\): duplicate model "
                                          rf"name 'own_tiny': {EXAMPLE} registered it already"):
        register_model("own_tiny", input=(1, 28))(Net)
    assert MODELS["own_tiny"].origin == EXAMPLE


def test_a_prunable_name_that_does_not_exist_is_an_error(clean):
    with pytest.raises(ConfigError, match=r"test_own_model.py: register_model\('own_bad'\) key 'prunable': "
                                          r"'fc9.weight' is not a parameter of the model; its parameters: "
                                          r"stem.weight, stem.bias"):
        register_model("own_bad", input=(1, 28), prunable=["head.weight", "fc9.weight"])(Net)
    assert "own_bad" not in MODELS
    with pytest.raises(ConfigError, match="key 'prunable': nothing to prune"):
        register_model("own_bad", input=(1, 28), prunable=lambda n, p: False)(Net)


def test_a_builder_must_take_num_classes_and_build(clean):
    def nope(in_channels=3):
        return nn.Linear(3, 3)
    with pytest.raises(ConfigError, match=r"register_model\('own_k'\): '.*nope' must accept num_classes"):
        register_model("own_k")(nope)
    with pytest.raises(ConfigError, match=r"building the model \(1 channels, 28x28 input, 10 classes\) failed"):
        register_model("own_k", input=(1, 28))(lambda num_classes: nn.Linear(3, num_classes, bias="x" + 1))
    with pytest.raises(ConfigError, match="key 'input' must be"):
        register_model("own_k", input=28)(Net)


@pytest.mark.parametrize("value, message", [
    ("no_such_pkg.nets", r"grid.yaml: key 'model_module' = 'no_such_pkg.nets': no module 'no_such_pkg.nets'"),
    ("mymodels/missing.py", r"grid.yaml: key 'model_module' = 'mymodels/missing.py': no such .py file"),
    ("not a name", r"grid.yaml: key 'model_module' = 'not a name': not a module name"),
])
def test_a_module_that_is_not_there_is_an_error_naming_the_key(clean, value, message):
    with pytest.raises(ConfigError, match=message):
        import_model_module(value, "grid.yaml")


def test_a_module_that_fails_to_import_names_its_file_and_line(clean, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("import torch.nn as nn\nx = (\n")
    with pytest.raises(ConfigError, match=rf"grid.yaml: key 'model_module' = '{broken}': importing it failed "
                                          rf"at {broken}:2: SyntaxError"):
        import_model_module(str(broken), "grid.yaml")
    raises = tmp_path / "raises.py"
    raises.write_text("import no_such_dependency_x\n")
    with pytest.raises(ConfigError, match=rf"importing it failed at {raises}:1: ModuleNotFoundError: No module "
                                          r"named 'no_such_dependency_x'"):
        import_model_module(str(raises), "grid.yaml")
    bad_reg = tmp_path / "badreg.py"
    bad_reg.write_text("import torch.nn as nn\nfrom lthlib.ownmodels import register_model\n"
                       "@register_model('own_x', prunable=['nope'])\nclass X(nn.Module):\n"
                       "    def __init__(self, num_classes=10):\n        super().__init__()\n"
                       "        self.fc = nn.Linear(3, num_classes)\n")
    with pytest.raises(ConfigError, match=rf"grid.yaml: key 'model_module' = '{bad_reg}': {bad_reg}: "
                                          r"register_model\('own_x'\) key 'prunable': 'nope' is not a parameter"):
        import_model_module(str(bad_reg), "grid.yaml")


def test_an_unknown_model_says_how_to_register_one():
    with pytest.raises(ConfigError, match="unknown model 'mynet'.*model_module: mypkg.mynet"):
        build_model("mynet")
