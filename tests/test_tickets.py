"""Your ticket out (lthlib.tickets, lthlib-runs) on real tiny runs trained here: the loaded model is the
run's own (same logits, the recorded test accuracy), its pruned weights are exactly zero, the prune-form
module computes the same function, and an export loads back into a bare model."""
from __future__ import annotations

import copy
import io
import shutil

import pandas as pd
import pytest
import torch

import lthlib
from lthlib import cli, tickets
from lthlib import data as D
from lthlib.engine import new_model
from lthlib.errors import CheckpointError, MaskError
from lthlib.models import load_profile
from lthlib.training import evaluate


@pytest.fixture(scope="module")
def shared_out(tmp_path_factory):
    """One output folder for the module: the second test asking for a run finds it finished."""
    return tmp_path_factory.mktemp("ticket_runs") / "outputs"


@pytest.fixture
def omp_run(tiny_exp, shared_out):
    exp = tiny_exp(epochs=1, out_root=str(shared_out))
    [rd] = lthlib.run_setting(exp, "lt_omp")
    return exp, rd


def _test_batches(exp):
    _, test = D.load_data(exp.dataset, exp.data_root, None, None, exp.subset_seed, False)
    spec = D.DATASETS[exp.dataset]
    return D.Batches(test, exp.eval_batch_size, spec.mean, spec.std, False)


def _own_model(exp, rd):
    """The run's network built by hand from its final.pt (what the run's own weights give)."""
    model = new_model(exp, exp.seed, None)
    model.load_state_dict(torch.load(rd.final, weights_only=True))
    return model.eval()


def test_load_run_is_the_runs_own_model(omp_run):
    exp, rd = omp_run
    model, mask, info = tickets.load_run(rd.path)
    x, y = next(iter(_test_batches(exp)))
    with torch.no_grad():
        out, own = model(x), _own_model(exp, rd)(x)
        theta0 = new_model(exp, exp.seed, None).eval()(x)
    assert torch.equal(out, own) and not torch.equal(out, theta0)
    assert (out.argmax(1) == y).float().mean() == (own.argmax(1) == y).float().mean()
    _, acc = evaluate(model, _test_batches(exp), torch.device("cpu"))
    assert acc.item() == pytest.approx(info["final_test_acc"], abs=1e-9)  # the run's recorded accuracy
    assert not model.training
    assert (info["setting"], info["model"], info["dataset"], info["run"]) == ("lt_omp", "lenet5", exp.dataset,
                                                                              rd.name)
    assert info["sparsity"] == pytest.approx(0.5, abs=1e-3) and info["input"]["channels"] == 1


def test_pruned_weights_are_exactly_zero(omp_run):
    _, rd = omp_run
    model, mask, _ = tickets.load_run(rd.path)
    assert sorted(mask) == sorted(load_profile("lenet5"))
    weights = dict(model.named_parameters())
    for name, keep in mask.items():
        assert keep.dtype == torch.bool and bool((~keep).any())
        assert bool((weights[name][~keep] == 0).all())
    assert sum(int((~k).sum()) for k in mask.values()) / sum(k.numel() for k in mask.values()) == \
        pytest.approx(0.5, abs=1e-3)


def test_prune_form_computes_the_same_and_keeps_pruned_weights_zero(omp_run):
    exp, rd = omp_run
    model, mask, _ = tickets.load_run(rd.path)
    pruned = tickets.to_torch_prune(copy.deepcopy(model), mask)
    state = pruned.state_dict()
    for name in mask:
        assert f"{name}_orig" in state and f"{name}_mask" in state and name not in state
        assert torch.equal(state[f"{name}_mask"].bool(), mask[name])
    x, _ = next(iter(_test_batches(exp)))
    with torch.no_grad():
        assert torch.equal(pruned(x), model(x))
    opt = torch.optim.SGD(pruned.parameters(), lr=0.1)  # training in prune form keeps the mask
    pruned.train()
    pruned(x).sum().backward()
    opt.step()
    for name, keep in mask.items():
        module, param = name.rsplit(".", 1)
        assert bool((getattr(pruned.get_submodule(module), param)[~keep] == 0).all())
    assert tickets.to_torch_prune(model, None) is model and "conv2.weight" in model.state_dict()


def test_export_state_loads_back_into_a_bare_model(omp_run, tmp_path):
    exp, rd = omp_run
    model, mask, _ = tickets.load_run(rd.path)
    x, _ = next(iter(_test_batches(exp)))
    plain = torch.load(tickets.export_state(rd.path, tmp_path / "plain.pt"), weights_only=True)
    assert plain["format"] == tickets.EXPORT_FORMAT and plain["prune_form"] is False
    assert plain["info"]["run"] == rd.name and sorted(plain["mask"]) == sorted(mask)
    bare = new_model(exp, 123, None).eval()
    bare.load_state_dict(plain["state_dict"])
    form = torch.load(tickets.export_state(rd.path, tmp_path / "form.pt", prune_form=True), weights_only=True)
    assert form["prune_form"] is True and "conv2.weight_orig" in form["state_dict"]
    again = tickets.to_torch_prune(new_model(exp, 123, None).eval(), form["mask"])
    again.load_state_dict(form["state_dict"])
    with torch.no_grad():
        assert torch.equal(bare(x), model(x)) and torch.equal(again(x), model(x))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["form.pt", "plain.pt"]  # no temporary left


def test_small_dense_run_is_built_at_its_widths(tiny_exp, tmp_path):
    exp = tiny_exp(model="resnet8_w8_s2", epochs=1, imp_rounds=1, settings=list(lthlib.SETTINGS))
    rd = lthlib.run_setting(exp, "sdt")[0]
    model, mask, info = tickets.load_run(rd.path)
    widths = rd.read_config()["identity"]["widths"]
    assert mask is None and info["widths"] == widths and info["setting"] == "sdt"
    assert [model.layer1[0].conv1.out_channels, model.layer2[0].conv1.out_channels,
            model.layer3[0].conv1.out_channels] == widths
    own = new_model(exp, exp.seed, widths).eval()
    own.load_state_dict(torch.load(rd.final, weights_only=True))
    x, _ = next(iter(_test_batches(exp)))
    with torch.no_grad():
        assert torch.equal(model(x), own(x))
    blob = torch.load(tickets.export_state(rd.path, tmp_path / "sd.pt", prune_form=True), weights_only=True)
    assert blob["mask"] is None and blob["prune_form"] is False


def test_unfinished_and_inconsistent_runs_are_refused(omp_run, tmp_path):
    _, rd = omp_run
    with pytest.raises(CheckpointError, match="no such run folder"):
        tickets.load_run(tmp_path / "nope")
    cut = shutil.copytree(rd.path, tmp_path / "cut")
    (cut / "metrics.json").unlink()
    with pytest.raises(CheckpointError, match="not finished"):
        tickets.load_run(cut)
    bad = shutil.copytree(rd.path, tmp_path / "bad")
    final, mask = torch.load(bad / "final.pt"), torch.load(bad / "mask.pt")
    final["fc1.weight"][~mask["fc1.weight"]] = 1.0
    torch.save(final, bad / "final.pt")
    with pytest.raises(MaskError, match="fc1.weight"):
        tickets.load_run(bad)


def test_runs_command_lists_and_filters(omp_run, capsys):
    exp, rd = omp_run
    root = exp.out_root
    assert cli.main([root]) == 0
    out = capsys.readouterr().out
    assert rd.name in out and "pretrain-lenet5" in out
    assert cli.main([root, "--setting", "lt_omp", "--sparsity", "0.5", "--lr", str(exp.lr)]) == 0
    out = capsys.readouterr().out
    assert rd.name in out and "pretrain-lenet5" not in out
    assert cli.main([root, "--grid", exp.name, "--csv"]) == 0
    table = pd.read_csv(io.StringIO(capsys.readouterr().out))
    assert set(table["setting"]) == {"pretrain", "lt_omp"} and "identity" not in table
    assert cli.main([root, "--lr", "0.1234"]) == 0
    assert "no finished runs" in capsys.readouterr().out
    assert cli.main([str(rd.path.parent / "missing-root")]) == 1
    assert "no such folder" in capsys.readouterr().err


def test_runs_command_exports(omp_run, tmp_path, capsys):
    _, rd = omp_run
    assert cli.main(["export", str(rd.path), str(tmp_path / "t.pt"), "--prune-form"]) == 0
    assert "wrote" in capsys.readouterr().out
    assert "fc1.weight_mask" in torch.load(tmp_path / "t.pt", weights_only=True)["state_dict"]
    assert cli.main(["export", str(tmp_path / "nope"), str(tmp_path / "u.pt")]) == 1
    assert "no such run folder" in capsys.readouterr().err and not (tmp_path / "u.pt").exists()
