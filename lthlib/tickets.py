"""Your ticket out: a finished run folder as a model you can use outside the study.

    ticket = lthlib.tickets.load_run("outputs/demo/runs/lt_omp-...")   # Ticket(model, mask, info)
    model, mask, info = ticket                                          # it unpacks, too
    lthlib.tickets.export_state(run_dir, "ticket.pt")                   # a plain state dict + mask
    lthlib.tickets.to_torch_prune(model, mask)                          # torch.nn.utils.prune form

``load_run`` builds the run's network from its config.json (the model and dataset of its identity and,
for a small-dense run, its widths), loads ``final.pt`` (θT) and, for a sparse run, ``mask.pt``, and checks
that every pruned weight is exactly zero. The model is returned in eval mode; it takes images normalized
as the run saw them: ``(x / 255 - mean) / std`` per channel, with ``info["input"]``'s mean and std.
"""
from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn as nn
from torch.nn.utils import prune

from . import data as D
from . import params
from .engine import new_model
from .errors import CheckpointError, ConfigError, MaskError
from .pruning import check_mask
from .runs import RunDir, atomic_torch_save

EXPORT_FORMAT = "lthlib-ticket-1"


class Ticket(NamedTuple):
    """A finished run as a model: ``model`` (θT, pruned weights zero, eval mode), ``mask`` (parameter
    name -> bool tensor, True = kept; None for a dense or small-dense run) and ``info`` (plain values:
    run, setting, model, dataset, widths, lr, seed, sparsity, final_test_acc, input, identity, metrics)."""
    model: nn.Module
    mask: dict[str, torch.Tensor] | None
    info: dict


def finished_run(path) -> RunDir:
    """The run folder at ``path``; a CheckpointError unless it is a finished run with its weights."""
    rd = RunDir(path)
    if not rd.path.is_dir():
        raise CheckpointError(f"{rd.path}: no such run folder (a run folder holds config.json, final.pt, "
                              f"metrics.json; `lthlib-runs` lists them).")
    problem = rd.problem() if rd.metrics.exists() else "not finished: no metrics.json"
    if problem:
        raise CheckpointError(f"{rd.path}: not a finished run with its weights ({problem}). Run its setting "
                              f"again (finished runs are kept), or copy the whole folder back.")
    return rd


def run_experiment(cfg: dict) -> params.Experiment:
    """The run's Experiment from its config.json: the recorded parameters this lthlib knows, with the
    identity's model and dataset. Recorded values this version no longer accepts fall back to the model
    and dataset alone (all a model needs)."""
    ident = cfg.get("identity") or {}
    recorded = {k: v for k, v in (cfg.get("experiment") or {}).items() if k in params.FIELDS}
    recorded.update({k: ident[k] for k in ("model", "dataset") if k in ident})
    try:
        return params.load(None, recorded)
    except ConfigError:
        return params.load(None, {k: recorded[k] for k in ("model_module", "model", "dataset") if k in recorded})


def _check_pruned_zero(model: nn.Module, mask: dict, where: Path) -> None:
    weights = dict(model.named_parameters())
    for name, keep in mask.items():
        if bool((weights[name].detach()[~keep] != 0).any()):
            raise MaskError(f"{where}: pruned weights of {name} are not zero: final.pt and mask.pt of this "
                            f"run disagree. Delete the run folder and run its setting again.")


def _info(rd: RunDir, cfg: dict, met: dict, exp: params.Experiment) -> dict:
    ident, spec = cfg["identity"], D.check_dataset_name(exp.dataset)
    return {"run": rd.name, "path": str(rd.path), "setting": ident.get("setting"), "model": exp.model,
            "dataset": exp.dataset, "widths": ident.get("widths"), "lr": ident.get("lr"),
            "seed": (cfg.get("experiment") or {}).get("seed", ident.get("init_seed")),
            "init_seed": ident.get("init_seed"), "sparsity": met.get("global_sparsity"),
            "final_test_acc": met.get("final_test_acc"),
            "input": {"channels": spec.channels, "size": spec.size, "classes": spec.classes,
                      "mean": list(spec.mean), "std": list(spec.std)},
            "identity": ident, "metrics": met}


def load_run(path, device="cpu") -> Ticket:
    """The finished run at ``path`` as a Ticket: its network built from config.json, θT from final.pt,
    the mask from mask.pt (sparse runs), every pruned weight checked to be exactly zero."""
    rd = finished_run(path)
    cfg, met = rd.read_config(), rd.read_metrics()
    ident = cfg["identity"]
    exp = run_experiment(cfg)
    model = new_model(exp, ident.get("init_seed", exp.seed), ident.get("widths"))
    try:
        model.load_state_dict(rd.load_final())
    except RuntimeError as exc:
        raise CheckpointError(f"{rd.final}: does not fit {exp.model} at widths {ident.get('widths')} "
                              f"({str(exc)[:300]})") from exc
    mask = None
    if "mask_source" in ident:  # a masked run (dense and small-dense runs have no mask)
        mask = rd.load_mask()
        check_mask(mask, model, list(mask), source=str(rd.mask))
        _check_pruned_zero(model, mask, rd.path)
    model.to(device).eval()
    if mask is not None:
        mask = {k: v.to(device) for k, v in mask.items()}
    return Ticket(model, mask, _info(rd, cfg, met, exp))


def to_torch_prune(model: nn.Module, mask: dict | None) -> nn.Module:
    """Apply ``mask`` to ``model`` in ``torch.nn.utils.prune`` form (in place; returns ``model``): each
    masked ``<module>.<param>`` becomes ``<param>_orig`` with a ``<param>_mask`` buffer, recomputed as their
    product before every forward, so further training keeps pruned weights at zero. ``prune.remove``
    makes it plain again. A None or empty mask leaves the model as it is."""
    for name, keep in (mask or {}).items():
        module_name, _, param = name.rpartition(".")
        module = model.get_submodule(module_name)
        weight = getattr(module, param)
        if keep.shape != weight.shape:
            raise MaskError(f"mask entry {name!r} has shape {tuple(keep.shape)}, the model's tensor "
                            f"{tuple(weight.shape)}")
        prune.custom_from_mask(module, param, keep.to(weight.device))
    return model


def export_state(path, out_file, prune_form: bool = False) -> Path:
    """Write the run at ``path`` to ``out_file`` (torch.save, atomically) as plain data a bare PyTorch
    can read: ``{"format", "state_dict", "mask", "prune_form", "info"}``. ``state_dict`` is the plain one
    (pruned weights zero) or, with ``prune_form``, the ``torch.nn.utils.prune`` one (``*_orig`` and
    ``*_mask``). Load it with ``torch.load(out_file, weights_only=True)``."""
    model, mask, info = load_run(path)
    if prune_form:
        to_torch_prune(model, mask)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    blob = {"format": EXPORT_FORMAT, "state_dict": state, "prune_form": bool(prune_form and mask),
            "mask": None if mask is None else {k: v.cpu() for k, v in mask.items()}, "info": info}
    out_file = Path(out_file)
    atomic_torch_save(blob, out_file)
    return out_file
