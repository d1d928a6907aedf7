"""The study's settings end to end on tiny generated data: files, the LT/RR invariants, skip, resume."""
import json
import subprocess
import sys
import textwrap

import pytest
import torch

import lthlib as L
from lthlib.models import load_profile
from lthlib.pruning import global_sparsity


@pytest.fixture
def done(tiny_exp):
    exp = tiny_exp()
    return exp, {s: L.run_setting(exp, s) for s in exp.settings}


def test_every_setting_writes_a_self_describing_run_folder(done):
    exp, runs = done
    assert len(runs["pretrain"]) == 1 and len(runs["lt_imp"]) == 2 and len(runs["lt_omp"]) == 1
    for setting, rds in runs.items():
        for rd in rds:
            files = {p.name for p in rd.path.iterdir()}
            assert {"config.json", "init.pt", "final.pt", "history.csv", "metrics.json"} <= files, rd
            assert ("mask.pt" in files) == (setting != "pretrain")
            assert "checkpoint.pt" not in files and not any(".tmp" in f for f in files)
            cfg, met = rd.read_config(), rd.read_metrics()
            assert cfg["identity"]["setting"] == setting and rd.name.startswith(setting)
            assert rd.name.endswith("-" + L.runs.config_hash(cfg["identity"]))
            assert {"threads", "torch", "device", "experiment", "code_version"} <= set(cfg)
            if setting != "pretrain":
                assert {"mask_source", "weight_source"} <= set(cfg["identity"])
            assert 0 <= met["final_test_acc"] <= 100 and met["best_epoch_secondary"] >= 1
            assert met["threads"] == 1 and met["device"] == "cpu"
            assert len(rd.history.read_text().strip().splitlines()) == exp.epochs + 1


def test_lt_starts_from_theta0_times_mask_and_rr_from_a_new_init(done):
    exp, runs = done
    theta0 = runs["pretrain"][0].load_init()
    thetaT = runs["pretrain"][0].load_final()
    profile = load_profile(exp.model)
    for lt, rr in zip(runs["lt_imp"] + runs["lt_omp"], runs["rr_imp"] + runs["rr_omp"]):
        m_lt, m_rr = lt.load_mask(), rr.load_mask()
        init_lt, init_rr = lt.load_init(), rr.load_init()
        for n in theta0:
            expect = theta0[n] * m_lt[n] if n in m_lt else theta0[n]
            assert torch.equal(init_lt[n], expect), n
        for n in profile:
            assert torch.equal(m_lt[n], m_rr[n])
            kept = m_rr[n]
            assert not torch.equal(init_rr[n][kept], init_lt[n][kept])
            assert bool((init_rr[n][~kept] == 0).all())
    one = runs["oneshot_retrain"][0]
    for n, m in one.load_mask().items():
        assert torch.equal(one.load_init()[n], thetaT[n] * m)
    assert all(torch.equal(runs["lt_omp"][0].load_mask()[n], one.load_mask()[n]) for n in profile)


def test_imp_sparsity_schedule_and_dense_stem_and_classifier(done):
    exp, runs = done
    sp = [round(rd.read_metrics()["global_sparsity"], 4) for rd in runs["lt_imp"]]
    assert sp == [0.2, 0.36]
    last = runs["lt_imp"][-1]
    final = last.load_final()
    assert "conv1.weight" not in last.load_mask() and "fc3.weight" not in last.load_mask()
    assert bool((final["conv1.weight"] != 0).all()) and bool((final["fc3.weight"] != 0).all())
    for n, m in last.load_mask().items():  # pruned weights are exactly zero at the end
        assert bool((final[n][~m] == 0).all())
    rnd = runs["random_prune"][0].load_mask()
    omp = runs["lt_omp"][0].load_mask()
    assert all(int(rnd[n].sum()) == int(omp[n].sum()) for n in omp)
    assert abs(global_sparsity(omp) - 0.5) < 1e-3


def test_finished_runs_are_skipped(done):
    exp, runs = done
    before = {rd.metrics: rd.metrics.stat().st_mtime_ns for rds in runs.values() for rd in rds}
    again = L.rr_imp(exp)
    assert [r.path for r in again] == [r.path for r in runs["rr_imp"]]
    assert {rd.metrics: rd.metrics.stat().st_mtime_ns for rds in runs.values() for rd in rds} == before


def _script(exp, kill_after_saves):
    return textwrap.dedent(f"""
        import os, signal, torch, lthlib as L
        import lthlib.training as T
        torch.set_num_threads(1)
        saves = [0]
        real = T.atomic_torch_save
        def dying_save(obj, path):
            real(obj, path)
            saves[0] += 1
            if saves[0] >= {kill_after_saves}:
                os.kill(os.getpid(), signal.SIGKILL)   # killed right after a checkpoint
        T.atomic_torch_save = dying_save
        exp = L.make_experiment(None, **{exp.as_dict()!r})
        L.pretrain(exp)
    """)


def test_kill_and_resume_gives_identical_final_weights(tiny_exp, tmp_path):
    exp = tiny_exp(epochs=4, out_root=str(tmp_path / "a"))
    ref = L.pretrain(tiny_exp(epochs=4, out_root=str(tmp_path / "b"))).load_final()
    proc = subprocess.run([sys.executable, "-c", _script(exp, 2)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    rd = next((tmp_path / "a").glob("t/runs/pretrain-*"))
    rd = L.RunDir(rd)
    assert rd.checkpoint.exists() and not rd.finished()
    assert torch.load(rd.checkpoint, weights_only=True)["epoch"] == 2
    resumed = L.pretrain(exp)
    assert resumed.path == rd.path and resumed.finished()
    final = resumed.load_final()
    assert all(torch.equal(final[k], ref[k]) for k in ref)
    assert len(resumed.history.read_text().strip().splitlines()) == 5


def test_corrupt_checkpoint_is_a_clear_error_and_nothing_looks_finished(tiny_exp, tmp_path):
    exp = tiny_exp(epochs=3)
    proc = subprocess.run([sys.executable, "-c", _script(exp, 1)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    rd = L.RunDir(next((tmp_path / "outputs").glob("t/runs/pretrain-*")))
    rd.checkpoint.write_bytes(rd.checkpoint.read_bytes()[:100])  # truncate
    with pytest.raises(L.CheckpointError, match=r"checkpoint\.pt: training checkpoint is corrupt.*Delete"):
        L.pretrain(exp)
    assert not rd.finished()


def test_garbage_dense_weights_are_named_and_retrained_when_a_setting_needs_them(tiny_exp, capsys):
    """A final.pt that is not a torch file makes the dense run broken: named, trained again (bitwise the
    same on a CPU), and the setting that needs it goes on."""
    exp = tiny_exp(epochs=1)
    pre = L.pretrain(exp)
    acc = pre.read_metrics()["final_test_acc"]
    pre.final.write_bytes(b"not a checkpoint")
    runs = L.lt_omp(exp)
    assert f"{pre.path}: broken run" in capsys.readouterr().out
    assert pre.finished() and pre.read_metrics()["final_test_acc"] == acc and all(r.finished() for r in runs)


def test_a_folder_holding_another_config_is_refused(tiny_exp):
    exp = tiny_exp(epochs=1)
    pre = L.pretrain(exp)
    cfg = json.loads(pre.config.read_text())
    cfg["identity"]["lr"] = 9.0
    pre.config.write_text(json.dumps(cfg))
    with pytest.raises(L.ConfigError, match="different configuration"):
        L.pretrain(exp)


def test_identity_changes_with_recipe_but_not_with_threads(tiny_exp):
    a = L.pretrain(tiny_exp(epochs=1))
    b = L.pretrain(tiny_exp(epochs=1, threads=2))
    c = L.pretrain(tiny_exp(epochs=1, lr=0.01))
    assert a.path == b.path and a.path != c.path


def test_every_registry_entry_is_a_plan_function_a_notebook_and_owned_fields():
    """What registry.py's docstring promises: each setting has a plan function of its name, a notebook,
    and the fields it names have the 'setting' identity role (and only settings own such fields)."""
    from pathlib import Path
    from lthlib import params as P, registry, settings
    root = Path(__file__).resolve().parent.parent
    owned = set()
    for s in registry.SETTINGS:
        assert callable(getattr(settings, s.name)), s.name
        assert (root / "notebooks" / f"{s.notebook}.py").exists(), s.notebook
        for f in s.params:
            assert P.FIELDS[f].metadata["identity"] == P.SETTING, f
        owned |= set(s.params)
    assert {n for n, f in P.FIELDS.items() if f.metadata["identity"] == P.SETTING} == owned


def test_a_setting_owned_parameter_renames_only_that_settings_runs(tiny_exp, monkeypatch):
    """A parameter one setting owns enters the identity of that setting's runs and of nothing else."""
    import dataclasses
    from lthlib import registry, settings
    exp = tiny_exp()
    before = {p.name: p.setting for p in L.plans.closure(settings.grid_plans(exp))}
    entry = registry.BY_NAME["lt_omp"]
    monkeypatch.setitem(registry.BY_NAME, "lt_omp", dataclasses.replace(entry, params=("rr_seed_offset",)))
    after = {p.name: p.setting for p in L.plans.closure(settings.grid_plans(exp))}
    renamed = {s for n, s in before.items() if n not in after}
    assert renamed == {"lt_omp"}
    assert len(before) == len(after)
    (lt,) = settings.plan(exp, "lt_omp")
    assert lt.identity["rr_seed_offset"] == exp.rr_seed_offset


def test_plans_say_what_a_setting_needs_without_training(tiny_exp):
    from lthlib import settings
    exp = tiny_exp()
    rr = settings.plan(exp, "rr_imp")
    assert [p.round for p in rr] == [1, 2] and all(p.mask == "copy" and p.start == "fresh" for p in rr)
    assert [q.setting for q in rr[1].needs] == ["lt_imp"] and rr[1].needs[0].round == 2
    assert settings.depends(exp, "rr_imp") == ["lt_imp"] and settings.depends(exp, "lt_imp") == ["pretrain"]
    assert settings.sequential(exp, "lt_imp") and not settings.sequential(exp, "rr_imp")
    waves = L.plans.waves(settings.plan(exp, "rr_imp"))
    assert [sorted(p.setting for p in w) for w in waves] == [["pretrain"], ["lt_imp"], ["lt_imp", "rr_imp"], ["rr_imp"]]
    assert not any(p.folder.path.exists() for w in waves for p in w)  # planning trains nothing


def test_sdt_is_a_small_dense_network_of_the_subnetworks_size(tiny_exp):
    """SDT (SPEC section 2): per sparsity a dense network of reduced widths with the subnetwork's
    parameter count, its widths and both counts in metrics.json, on the LT runs' data order."""
    exp = tiny_exp(model="resnet8_w8_s2", epochs=1, settings=["pretrain", "lt_imp", "sdt"], sparsities=[0.5])
    runs = L.run_setting(exp, "sdt")
    assert [round(r.read_config()["identity"]["sparsity"], 3) for r in runs] == [0.2, 0.36, 0.5]
    for rd in runs:
        ident, met = rd.read_config()["identity"], rd.read_metrics()
        fit = met["sdt"]
        assert ident["widths"] == fit["widths"] and abs(fit["sd_params"] / fit["target_params"] - 1) < 0.01
        assert sum(v.numel() for k, v in rd.load_init().items() if "running" not in k and "num_batches" not in k) \
            == fit["sd_params"]
        assert ident["data_seed"] == L.settings.lt_data_seed(exp) and "mask_source" not in ident
        assert met["global_sparsity"] == 0.0 and not rd.mask.exists()
    assert runs[0].read_config()["identity"]["widths"] != runs[-1].read_config()["identity"]["widths"]


def test_weight_rewinding_starts_from_theta_t_and_continues_the_dense_schedule(tiny_exp):
    """WR (paper App. B): the dense run keeps θ_t; a WR run starts at θ_t ⊙ m bitwise, trains the
    remaining T - t epochs, and its first lr is the dense run's lr at epoch t."""
    exp = tiny_exp(epochs=4, milestones=[0.25, 0.75], settings=["pretrain", "lt_imp", "lt_omp", "wr_imp", "wr_omp"],
                   rewind_epoch=1)
    wr = L.run_setting(exp, "wr_imp") + L.run_setting(exp, "wr_omp")
    pre, lts = L.pretrain(exp), L.run_setting(exp, "lt_imp")
    theta_t = pre.load_kept(1)
    dense_lrs = [float(r.split(",")[1]) for r in pre.history.read_text().splitlines()[1:]]
    for rd, mask_run in zip(wr, lts + L.run_setting(exp, "lt_omp")):
        m, start = rd.load_mask(), rd.load_init()
        assert all(torch.equal(m[n], mask_run.load_mask()[n]) for n in m)
        for n, v in theta_t.items():
            assert torch.equal(start[n], v * m[n] if n in m else v), n
        rows = rd.history.read_text().strip().splitlines()[1:]
        assert [int(r.split(",")[0]) for r in rows] == [2, 3, 4]
        assert [float(r.split(",")[1]) for r in rows] == dense_lrs[1:]
        src = rd.read_config()["identity"]["weight_source"]
        assert src == {"kind": "theta_t", "from": pre.name, "epoch": 1}
        assert rd.read_config()["identity"]["rewind_epoch"] == 1
    # rewind_epoch is the WR runs' own parameter: the other runs keep their names
    other = tiny_exp(epochs=4, milestones=[0.25, 0.75], settings=exp.settings, rewind_epoch=2)
    assert L.settings.plan(other, "lt_imp")[0].name == L.settings.plan(exp, "lt_imp")[0].name
    assert L.settings.plan(other, "wr_imp")[0].name != L.settings.plan(exp, "wr_imp")[0].name


def test_a_dense_run_missing_the_weights_a_rewinding_grid_needs_is_retrained(tiny_exp, capsys):
    plain = tiny_exp(epochs=2, settings=["pretrain"])
    pre = L.pretrain(plain)
    assert not pre.kept(1).exists()
    rewinding = tiny_exp(epochs=2, settings=["pretrain", "lt_omp", "wr_omp"], rewind_epoch=1)
    again = L.pretrain(rewinding)
    assert again.path == pre.path and again.kept(1).exists()
    assert "weights_e001.pt missing" in capsys.readouterr().out


def test_rewind_epoch_must_leave_epochs_to_train(tiny_exp):
    with pytest.raises(L.ConfigError, match="rewind_epoch"):
        tiny_exp(epochs=2, settings=["pretrain", "lt_omp", "wr_omp"], rewind_epoch=2)


def test_a_notebook_runs_one_cell_or_every_cell_of_the_grid(tiny_exp, tmp_path):
    """load_cells narrows a grid to one (lr, seed) cell or keeps every cell; run_cells trains the cells'
    runs together and gives the folders run_setting gives cell by cell."""
    import yaml
    exp = tiny_exp(epochs=1, lrs=[0.05, 0.02], seeds=[1, 2], settings=["pretrain", "lt_omp"])
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump({k: v for k, v in exp.as_dict().items() if k in ("name", "model", "lrs", "seeds",
                                                                                   "settings", "epochs")}))
    one = L.load_cells(path, {}, 0.02, 2)
    assert (one.lrs, one.seeds, one.lr, one.seed) == ([0.02], [2], 0.02, 2)
    every = L.load_cells(path, {}, None, None)
    assert every.lrs == [0.05, 0.02] and every.seeds == [1, 2]
    assert L.settings.describe_cells(one) == "lr 0.02, seed 2"
    assert L.settings.describe_cells(every) == "lrs 0.05, 0.02 x seeds 1, 2"
    together = L.run_cells(exp, "lt_omp")
    alone = [rd for cell in L.settings.cells(exp) for rd in L.run_setting(cell, "lt_omp")]
    assert [r.name for r in together] == [r.name for r in alone] and len(together) == 4


def test_sdt_runs_train_nchw_whatever_the_recipe(tiny_exp):
    """channels_last crashes torch 2.14.1's CPU backward for odd widths: SDT runs say and do NCHW."""
    exp = tiny_exp(model="resnet8_w8_s2", channels_last=True, settings=["pretrain", "lt_imp", "sdt"])
    assert all(p.identity["channels_last"] is False for p in L.settings.plan(exp, "sdt"))
    assert all(p.identity["channels_last"] is True for p in L.settings.plan(exp, "lt_imp"))


def test_sparse_training_lrs_train_the_subnetworks_at_their_own_lr(tiny_exp):
    """sparse_lrs (paper Table 4): the dense model of a cell at the cell's lr, every subnetwork run of the
    cell at each sparse lr, the pretraining lr in their identity; without sparse_lrs nothing is renamed."""
    base = tiny_exp(lr=0.05, imp_rounds=2, settings=["pretrain", "lt_imp", "rr_imp", "lt_omp", "rr_omp"])
    table4 = base.replace(sparse_lrs=[0.01, 0.02])
    assert L.settings.plan(table4, "pretrain")[0].name == L.settings.plan(base, "pretrain")[0].name
    lt = L.settings.plan(table4, "lt_imp")
    assert [(p.cell.lr, p.round) for p in lt] == [(0.01, 1), (0.01, 2), (0.02, 1), (0.02, 2)]
    assert all(p.identity["pretrain_lr"] == 0.05 and p.identity["lr"] == p.cell.lr for p in lt)
    assert lt[1].mask_from is lt[0] and lt[0].mask_from.setting == "pretrain"  # each chain at its own lr
    rr = L.settings.plan(table4, "rr_imp")
    assert [(p.cell.lr, p.mask_from.name) for p in rr] == [(p.cell.lr, p.name) for p in lt]
    assert [p.cell.lr for p in L.settings.plan(table4, "lt_omp")] == [0.01, 0.02]
    assert "pretrain_lr" not in L.settings.plan(base, "lt_imp")[0].identity
    found = L.settings.plan_for(table4.replace(lr=0.02), "lt_imp", 2, None, pretrain_lr=0.05)
    assert found.name == lt[3].name
    assert L.settings.plan_for(base, "lt_imp", 2).name == L.settings.plan(base, "lt_imp")[1].name


def _resume_script(exp, setting, kill_after_saves):
    """A process that trains ``setting`` of ``exp`` and is killed right after its ``kill_after_saves``-th
    training checkpoint."""
    return textwrap.dedent(f"""
        import os, signal, torch, lthlib as L
        import lthlib.training as T
        torch.set_num_threads(1)
        saves = [0]
        real = T.atomic_torch_save
        def dying_save(obj, path):
            real(obj, path)
            saves[0] += 1
            if saves[0] >= {kill_after_saves}:
                os.kill(os.getpid(), signal.SIGKILL)
        T.atomic_torch_save = dying_save
        exp = L.make_experiment(None, **{exp.as_dict()!r})
        L.run_setting(exp, {setting!r})
    """)


@pytest.mark.parametrize("setting,model", [("sdt", "resnet8_w8_s2"), ("wr_omp", "lenet5")])
def test_sdt_and_weight_rewinding_runs_resume_after_a_kill_bitwise(tiny_exp, tmp_path, capsys, setting, model):
    """SDT and WR runs cut by a kill resume from their checkpoint (a WR run: in the dense run's schedule,
    after epoch t + 1) to the weights and history of an uncut run."""
    kw = dict(model=model, epochs=4, sparsities=[0.5], imp_rounds=1, n_train=128, n_test=50, rewind_epoch=1,
              settings=["pretrain", "lt_omp", setting])
    exp, ref_exp = (tiny_exp(out_root=str(tmp_path / d), **kw) for d in ("cut", "ref"))
    for e in (exp, ref_exp):
        L.pretrain(e)
    (ref,) = L.run_setting(ref_exp, setting)[-1:]
    proc = subprocess.run([sys.executable, "-c", _resume_script(exp, setting, 1)], capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr[-2000:]
    (rd,) = [L.RunDir(p) for p in (tmp_path / "cut").glob(f"t/runs/{setting}-*")]
    assert rd.checkpoint.exists() and not rd.finished()
    capsys.readouterr()
    (resumed,) = L.run_setting(exp, setting)[-1:]
    first = 2 if setting == "wr_omp" else 1  # the epoch the cut run had finished: t + 1 for WR (t = 1)
    assert f"resuming after epoch {first}/4" in capsys.readouterr().out
    assert resumed.path.name == ref.path.name and resumed.finished()
    a, b = resumed.load_final(), ref.load_final()
    assert all(torch.equal(a[k], b[k]) for k in b)
    cols = lambda rd: [r.split(",")[:2] for r in rd.history.read_text().splitlines()]  # epoch, lr
    assert cols(resumed) == cols(ref) and len(cols(ref)) == (4 if setting == "wr_omp" else 5)
