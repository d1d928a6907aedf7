"""Finished run folders written straight to disk, so the results and report tests need no training.
Each fake run is written from the protocol's own plan (``settings.plan_for``): its folder name and the
identity in config.json are the ones the engine would give it, so tests and engine cannot disagree.
metrics.json holds the accuracy asked for, and the weight files are placeholders (``write_weights`` puts
real tensors there)."""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import lthlib
from lthlib import registry
from lthlib import settings as protocol
from lthlib.runs import config_hash


def experiment(out_root, **kw):
    """A small grid of LeNet-5 runs under ``out_root``; by default every setting but the small-dense one
    (LeNet-5 cannot be built at other widths, so it has no SDT network)."""
    base = dict(name="g", model="lenet5", dataset="fashion_mnist", epochs=10, lrs=[0.1, 0.01], seeds=[1, 2, 3],
                imp_rounds=2, sparsities=[0.36], out_root=str(out_root),
                settings=[s for s in registry.NAMES if s != registry.SMALL_DENSE])
    return lthlib.load(None, {**base, **kw})


def fake_run(exp, setting, lr, seed, acc, sparsity=None, rnd=None, layer_sparsity=None, code="v1", device="cpu",
             tf32=None, pretrain_lr=None) -> Path:
    """One finished run of grid ``exp`` at (lr, seed) with final test accuracy ``acc``; an IMP run by its
    round ``rnd``, a one-shot run by its ``sparsity``; a subnetwork run at a sparse-training lr ``lr`` of a
    dense model trained at ``pretrain_lr`` (``sparse_lrs`` grids). ``tf32`` (True/False) is recorded in
    config.json's ``determinism`` as the engine records it (None: no determinism record)."""
    cell = exp.replace(lr=lr, seed=seed)
    plan = protocol.plan_for(cell, setting, rnd, sparsity, pretrain_lr=pretrain_lr)
    rd = plan.folder
    rd.path.mkdir(parents=True)
    det = {} if tf32 is None else {"determinism": {"deterministic": not tf32, "tf32": tf32}}
    rd.config.write_text(json.dumps({"identity": plan.identity, "experiment": plan.cell.as_dict(), "device": device,
                                     "code_version": code, "n_train_used": 100, "n_test_used": 50, **det},
                                    default=str))
    rd.metrics.write_text(json.dumps({
        "final_test_acc": acc, "best_test_acc_secondary": acc + 0.5, "best_epoch_secondary": 7,
        "global_sparsity": plan.sparsity or 0.0, "layer_sparsity": layer_sparsity or {}, "wall_time_s": 1.0,
        "device": device, "threads": 1}))
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


def write_weights(run: Path, **files) -> None:
    """Replace placeholder weight files of ``run`` by real ones: ``init=``, ``final=``, ``mask=`` dicts of
    tensors (``None`` deletes the file, as in a results-only run folder copied back from a GPU)."""
    import torch
    for name, value in files.items():
        path = run / f"{name}.pt"
        if value is None:
            path.unlink()
        else:
            torch.save(value, path)


# ----------------------------------------------------------------------------- a whole fake study
STUDY_GRID = """name: {name}
description: fake study grid for the report tests ({epochs} epochs)
model: resnet8_w8_s2
dataset: fashion_mnist
n_train: 5000
n_test: 5000
epochs: {epochs}
full_epochs: 16
lrs: [0.1, 0.01, 0.001]
seeds: [1, 2, 3]
imp_rounds: 8
sparsities: [0.59, 0.832]
settings: [{settings}]
"""


def _study_acc(setting: str, lr: float, sparsity: float, i: int) -> float:
    """Made-up accuracies in the paper's shape: at lr 0.01 IMP tickets beat RR and SDT clearly and stay
    near the same-lr dense model (secondary prize), at lr 0.1 LT ≈ RR; everything falls with sparsity."""
    dense = {0.1: 91.0, 0.01: 90.0, 0.001: 86.0}[lr]
    drop = (0.3 if setting == "lt_imp" and lr == 0.01 else 3.0) * sparsity ** 4
    shift = {"pretrain": 0.0, "lt_imp": -0.2 if lr == 0.01 else -2.4, "lt_omp": -1.0 if lr == 0.01 else -2.3,
             "rr_imp": -2.5, "rr_omp": -2.4, "sdt": -3.5}[setting]
    noise = 0.15 * math.sin(7.0 * i + 0.37 * sum(map(ord, setting)) + 11.0 * sparsity + 5.0 * lr)  # seed spread
    return round(dense + (shift - drop if setting != "pretrain" else 0.0) + noise, 3)


def _study_weights(model: str, seed: int, lr: float):
    """θ0 and a θT that keeps more of θ0's large weights at small lrs (so R_p falls with the lr)."""
    from lthlib.models import build_model
    import torch
    theta0 = build_model(model, 1, 10, 28, init_seed=seed).state_dict()
    noise = build_model(model, 1, 10, 28, init_seed=seed + 500).state_dict()
    scale = {0.1: 3.0, 0.01: 1.0, 0.001: 0.3}[lr]
    thetaT = {k: v + scale * noise[k] if v.is_floating_point() else v for k, v in theta0.items()}
    return theta0, thetaT, torch


def fake_study(root) -> Path:
    """Under ``root``: params/study.yaml (16 epochs, the full schedule) and params/study_4ep.yaml (4
    epochs), and their finished runs under ``root/out``: dense, LT/RR IMP and OMP, SDT when the registry
    has it, with real weight files for seeds 1 and 2 (seed 3 is a results-only folder, as copied back
    from a GPU). Returns the params folder."""
    from lthlib.pruning import global_magnitude_mask
    from lthlib.models import load_profile
    root = Path(root)
    params_dir = root / "params"
    params_dir.mkdir(parents=True, exist_ok=True)
    settings = [s for pair in registry.FAMILIES.values() for s in pair if s in registry.BY_NAME
                and not s.startswith("wr_")]
    settings = ", ".join(["pretrain"] + list(dict.fromkeys(settings)) +
                         ([registry.SMALL_DENSE] if registry.SMALL_DENSE in registry.BY_NAME else []))
    for name, epochs in (("study", 16), ("study_4ep", 4)):
        (params_dir / f"{name}.yaml").write_text(STUDY_GRID.format(name=name, epochs=epochs, settings=settings))
        exp = lthlib.load(params_dir / f"{name}.yaml", {"out_root": str(root / "out")})
        for cell_plan in protocol.grid_plans(exp):
            i = exp.seeds.index(cell_plan.cell.seed)
            sp = cell_plan.sparsity or 0.0
            acc = _study_acc(cell_plan.setting, cell_plan.cell.lr, sp, i) - (1.0 if epochs == 4 else 0.0)
            run = fake_run(exp, cell_plan.setting, cell_plan.cell.lr, cell_plan.cell.seed, acc,
                           sparsity=None if cell_plan.round else cell_plan.sparsity, rnd=cell_plan.round)
            if name != "study":
                continue
            if i == 2:  # copied back from a GPU without its weights
                write_weights(run, **{f: None for f in ("init", "final", "mask") if (run / f"{f}.pt").exists()})
                continue
            theta0, thetaT, torch = _study_weights(exp.model, cell_plan.cell.seed, cell_plan.cell.lr)
            if cell_plan.setting == "pretrain":
                write_weights(run, init=theta0, final=thetaT)
            elif cell_plan.setting == registry.FAMILIES["OMP"][0]:
                prof = load_profile(exp.model)
                write_weights(run, mask=global_magnitude_mask({k: thetaT[k] for k in prof}, sp))
            elif cell_plan.setting == registry.FAMILIES["OMP"][1]:
                prof = load_profile(exp.model)
                mask = global_magnitude_mask({k: thetaT[k] for k in prof}, sp)
                fresh, _, _ = _study_weights(exp.model, cell_plan.cell.seed + 1000, cell_plan.cell.lr)
                write_weights(run, init={k: v * mask[k] if k in mask else v for k, v in fresh.items()})
    return params_dir
