"""Finished run folders written straight to disk, so the results and report tests need no training:
config.json holds the identity the engine gives that run (``engine.run_dir``), metrics.json the accuracy
asked for, and the weight files are placeholders (or real state dicts where a test reads them)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import lthlib
from lthlib import settings as protocol
from lthlib.engine import RunSpec, run_dir
from lthlib.models import load_profile
from lthlib.pruning import imp_sparsity
from lthlib.runs import config_hash


def experiment(out_root, **kw):
    base = dict(name="g", model="lenet5", dataset="fashion_mnist", epochs=10, lrs=[0.1, 0.01], seeds=[1, 2, 3],
                imp_rounds=2, sparsities=[0.36], out_root=str(out_root))
    return lthlib.load(None, {**base, **kw})


def _seeds(cell, setting):
    if setting == "pretrain":
        return cell.seed, cell.seed
    if setting.startswith("rr_"):
        return protocol.rr_seeds(cell)
    return cell.seed, protocol.lt_data_seed(cell)


def _sources(cell, setting):
    if setting == "pretrain":
        return {}
    kind = f"random_{cell.random_mode}" if setting == "random_prune" else "omp"
    return {"mask_source": {"kind": kind, "from": "dense"}, "weight_source": {"kind": "theta0", "from": "dense"}}


def fake_run(exp, setting, lr, seed, acc, sparsity=None, rnd=None, layer_sparsity=None, code="v1") -> Path:
    """One finished run of grid ``exp`` at (lr, seed) with final test accuracy ``acc``; an IMP run by its
    round ``rnd``, a one-shot run by its ``sparsity``."""
    cell = exp.replace(lr=lr, seed=seed)
    if rnd is not None:
        sparsity = round(imp_sparsity(rnd, cell.imp_rate), 6)
    init_seed, data_seed = _seeds(cell, setting)
    spec = RunSpec(setting, init_seed, data_seed, start=None, sparsity=sparsity, round_=rnd,
                   sources=_sources(cell, setting))
    rd, ident = run_dir(cell, spec, load_profile(cell.model))
    rd.path.mkdir(parents=True)
    rd.config.write_text(json.dumps({"identity": ident, "experiment": cell.as_dict(), "code_version": code,
                                     "n_train_used": 100, "n_test_used": 50}, default=str))
    rd.metrics.write_text(json.dumps({
        "final_test_acc": acc, "best_test_acc_secondary": acc + 0.5, "best_epoch_secondary": 7,
        "global_sparsity": sparsity or 0.0, "layer_sparsity": layer_sparsity or {}, "wall_time_s": 1.0,
        "device": "cpu", "threads": 1}))
    for f in (rd.init, rd.final, rd.history, rd.mask):
        f.write_bytes(b"placeholder")
    return rd.path


def lt_rr_grid(exp, gap, dense=(90.0, 88.0), lt_base=89.0, noise=(0.0, 0.3, -0.2)):
    """Dense runs at lr 0.1 and 0.01 (accuracies ``dense``) and, per lr, LT-IMP/RR-IMP rounds 1-2 where
    LT - RR = ``gap`` + 0.1 * noise[seed] and RR = lt_base - 1 + noise[seed]."""
    for i, s in enumerate(exp.seeds):
        for lr, d in zip((0.1, 0.01), dense):
            fake_run(exp, "pretrain", lr, s, d)
        for lr in exp.lrs:
            for r in (1, 2):
                rr = lt_base - 1 + noise[i]
                fake_run(exp, "lt_imp", lr, s, rr + gap + 0.1 * noise[i], rnd=r)
                fake_run(exp, "rr_imp", lr, s, rr, rnd=r)


def stale_copy(run: Path, acc: float, **identity_changes) -> Path:
    """A copy of finished ``run`` under another hash, as if made with other parameters."""
    cfg = json.loads((run / "config.json").read_text())
    cfg["identity"].update(identity_changes)
    new = run.with_name(run.name.rsplit("-", 1)[0] + "-" + config_hash(cfg["identity"]))
    shutil.copytree(run, new)
    (new / "config.json").write_text(json.dumps(cfg))
    met = json.loads((new / "metrics.json").read_text())
    (new / "metrics.json").write_text(json.dumps({**met, "final_test_acc": acc}))
    return new
