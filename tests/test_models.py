import pytest
import torch
import yaml

from lthlib import ConfigError
from lthlib.models import MODELS, build_model, derive_profile, load_profile, profile_path


def test_resnet20_profile_has_20_tensors_and_269824_weights():
    names = load_profile("resnet20")
    params = dict(build_model("resnet20").named_parameters())
    assert len(names) == 20
    assert sum(params[n].numel() for n in names) == 269_824
    assert sum("shortcut" in n for n in names) == 2


@pytest.mark.parametrize("name", sorted(MODELS))
def test_profile_file_matches_architecture(name):
    model = build_model(name)
    names = load_profile(name)
    assert names == derive_profile(name, model)
    doc = yaml.safe_load(profile_path(name).read_text())
    params = dict(model.named_parameters())
    assert doc["n_weights"] == sum(params[n].numel() for n in names)
    # never the stem conv, the classifier or a BatchNorm/bias tensor
    assert all(params[n].dim() >= 2 for n in names)
    first = next(iter(params))
    last_weight = [n for n, p in params.items() if p.dim() == 2][-1]
    assert last_weight not in names
    if params[first].dim() == 4:  # conv nets: the stem conv stays dense
        assert first not in names


def test_official_wide_resnet32_and_he_resnet32_sizes():
    wide = sum(p.numel() for p in build_model("resnet32_wide_official").parameters())
    he = sum(p.numel() for p in build_model("resnet32").parameters())
    assert 1.85e6 < wide < 1.87e6
    assert 0.45e6 < he < 0.47e6
    assert not any("shortcut" in n for n in load_profile("resnet32_wide_official"))


@pytest.mark.parametrize("name,c,k,s", [("resnet20", 3, 100, 32), ("vgg16", 3, 10, 32), ("vgg19", 1, 10, 28),
                                        ("mobilenet_v1", 3, 10, 32), ("lenet5", 1, 10, 28), ("lenet5", 3, 10, 32),
                                        ("lenet300_100", 1, 10, 28), ("resnet32", 1, 10, 28)])
def test_forward_shapes_follow_dataset(name, c, k, s):
    out = build_model(name, c, k, s)(torch.randn(2, c, s, s))
    assert out.shape == (2, k)


def test_init_seed_determines_weights():
    a = build_model("resnet20", init_seed=3).state_dict()
    b = build_model("resnet20", init_seed=3).state_dict()
    c = build_model("resnet20", init_seed=4).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["layer1.0.conv1.weight"], c["layer1.0.conv1.weight"])


def test_unknown_model_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown model 'resnet21'.*Known models"):
        build_model("resnet21")
