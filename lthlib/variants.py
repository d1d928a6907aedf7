"""Step variants: the formulations one training step can take, and which one a pack trains with.

A variant is a name of ``+``-joined parts (``eager`` alone for none of them):

- ``sub1x1`` -- strided 1x1 convolutions as 1x1 convolutions of the subsampled input
  (``lthlib.packing.rewrite_strided`` "subsample"); ``s2d`` -- that, and every other strided convolution as
  a stride-1 convolution of the space-to-depth input ("s2d");
- ``compile`` -- ``torch.compile`` of the forward (``reduce-overhead`` its CUDA-graph mode);
- ``bf16`` -- bf16 autocast: **changes the numerics**, so it is measured by the bench but never chosen for a
  run whose recipe is fp32 (a variant's precision must be the recipe's ``amp``);
- ``graph`` -- the whole step captured as one CUDA graph (``lthlib.capture``; on a CPU the same body runs
  eagerly).

All fp32 variants train the same run (its identity, its folder) up to float noise. ``choose`` picks, per
model, device kind and pack size, the fastest variant ``make bench`` measured (``<out_root>/bench/rates.json``,
``{model: {"cpu"|"gpu": {"variants": {name: {pack size: ticket-img/s}}}}}``) among those the run can hold
and whose precision is the recipe's; without a measurement that covers the pack size it keeps the
variant the run's own flags give (``cuda_graph``, ``compile``, ``compile_mode``: today's default). The
``step_variant`` parameter forces one (a name) or the flags (``flags``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .errors import ConfigError

PARTS = ("s2d", "sub1x1", "compile", "reduce-overhead", "bf16", "graph")  # canonical order of a name
STRIDED = {"sub1x1": "subsample", "s2d": "s2d"}


@dataclass(frozen=True)
class Variant:
    """One formulation of the training step (see the module doc)."""
    cuda_graph: bool = False
    compile: str | None = None  # torch.compile mode, or None
    strided: str = "off"  # lthlib.packing.rewrite_strided mode
    amp: str = "none"  # the precision the bench measures it in ("bf16" changes the numerics)

    @property
    def name(self) -> str:
        on = {"s2d": self.strided == "s2d", "sub1x1": self.strided == "subsample",
              "compile": self.compile == "default", "reduce-overhead": self.compile == "reduce-overhead",
              "bf16": self.amp == "bf16", "graph": self.cuda_graph}
        return "+".join(p for p in PARTS if on[p]) or "eager"

    def record(self) -> dict:
        return {"name": self.name, "cuda_graph": self.cuda_graph, "compile": self.compile,
                "strided": self.strided, "amp": self.amp}


def parse(name: str, source: str = "step variant") -> Variant:
    """The variant named ``name`` (parts in any order); a ConfigError names what is wrong."""
    parts = [p for p in str(name).split("+") if p]
    unknown = [p for p in parts if p not in PARTS + ("eager",)]
    if unknown or not parts or len(set(parts)) != len(parts):
        raise ConfigError(f"{source} {name!r}: a variant is 'eager' or parts joined by '+' from "
                          f"{', '.join(PARTS)} (e.g. 'sub1x1+graph'), each at most once")
    if "eager" in parts and len(parts) > 1:
        raise ConfigError(f"{source} {name!r}: 'eager' is the variant without parts; leave it out")
    if {"s2d", "sub1x1"} <= set(parts) or {"compile", "reduce-overhead"} <= set(parts):
        raise ConfigError(f"{source} {name!r}: s2d includes sub1x1, and compile and reduce-overhead are two "
                          f"modes of one compiler: give one of each pair")
    if {"graph", "reduce-overhead"} <= set(parts):
        raise ConfigError(f"{source} {name!r}: reduce-overhead captures graphs of its own; drop graph")
    strided = next((STRIDED[p] for p in parts if p in STRIDED), "off")
    compile_mode = "reduce-overhead" if "reduce-overhead" in parts else ("default" if "compile" in parts else None)
    return Variant("graph" in parts, compile_mode, strided, "bf16" if "bf16" in parts else "none")


def from_flags(exp) -> Variant:
    """The variant a run's own flags give (what every run trained with before variants were chosen)."""
    return Variant(exp.cuda_graph, exp.compile_mode if exp.compile else None, "off",
                   exp.amp if exp.amp == "bf16" else "none")


def holds(exp, v: Variant) -> bool:
    """Whether the run ``exp`` can train with ``v`` in its own numerics (the checks of
    ``params._check_cuda_graph``; a precision other than the recipe's never)."""
    if v.amp != exp.amp:
        return False
    if v.cuda_graph and (exp.mixup > 0 or exp.amp == "fp16" or exp.nproc > 1):
        return False
    return True


def pack_rate(rates: dict[int, float], k: int) -> float:
    """Ticket-images per second of a pack of ``k`` from ``rates`` measured at some pack sizes (linear
    between measured sizes, flat beyond them)."""
    sizes = sorted(rates)
    lo = max((s for s in sizes if s <= k), default=sizes[0])
    hi = min((s for s in sizes if s >= k), default=sizes[-1])
    if lo == hi:
        return rates[lo]
    return rates[lo] + (rates[hi] - rates[lo]) * (k - lo) / (hi - lo)


_READ: dict = {}


def measured(out_root, model: str, kind: str) -> tuple[dict[str, dict[int, float]], Path]:
    """({variant name: {pack size: ticket-img/s}} ``make bench`` measured for ``model`` on ``kind``
    ("cpu" | "gpu"), the file): empty when there is no file or no entry. A file that is not what the
    bench writes is a ConfigError naming it."""
    path = layout.bench_rates(out_root)
    try:
        stamp = path.stat().st_mtime_ns
    except OSError:
        return {}, path
    if _READ.get(path, (None,))[0] != stamp:
        _READ[path] = (stamp, _read_variants(path))
    return _READ[path][1].get(model, {}).get(kind, {}), path


def _read_variants(path: Path) -> dict:
    """{model: {kind: {variant name: {pack size: rate}}}} of a rates.json; ConfigError naming it if malformed."""
    try:
        doc = json.loads(path.read_text())
        table = {m: {d: {n: {int(k): float(r) for k, r in rates.items()}
                         for n, rates in (entry.get("variants") or {}).items()}
                     for d, entry in devs.items()} for m, devs in doc.items()}
    except (ValueError, TypeError, AttributeError, OSError) as exc:
        raise ConfigError(f"{path}: not the rates `make bench` writes ({type(exc).__name__}: {exc}); run "
                          f"`make bench` again or delete the file") from None
    for m, devs in table.items():
        for d, by_name in devs.items():
            for n, rates in by_name.items():
                bad = [(k, r) for k, r in rates.items() if k < 1 or not 0 < r < float("inf")]
                if bad:
                    raise ConfigError(f"{path}: {m} {d} variant {n!r} pack size {bad[0][0]}: rate {bad[0][1]}: "
                                      f"a pack size is >= 1 and a rate a positive number; run `make bench` "
                                      f"again or delete the file")
    return table


def choose(exp, k: int, kind: str) -> tuple[Variant, str]:
    """(the variant a pack of ``k`` runs of ``exp`` trains with on ``kind``, why): forced by the
    ``step_variant`` parameter, else the fastest measured one (see the module doc), else the flags'."""
    mode = exp.step_variant
    default = from_flags(exp)
    if mode == "flags":
        return default, "step_variant: flags (cuda_graph, compile as set)"
    if mode != "auto":
        forced = parse(mode, "key 'step_variant'")
        if not holds(exp, forced):
            raise ConfigError(f"key 'step_variant' {mode!r}: not a variant this run can train with in its own "
                              f"numerics (amp {exp.amp!r}, mixup {exp.mixup}, nproc {exp.nproc}); give another, "
                              f"or 'auto'")
        return forced, f"step_variant: {mode}"
    table, path = measured(exp.out_root, exp.model, kind)
    rates = {}
    for name, by_size in table.items():
        try:
            v = parse(name, f"{path}: variant")
        except ConfigError:
            continue  # a variant of another revision's bench: not one this engine can train
        if by_size and min(by_size) <= k <= max(by_size) and holds(exp, v):
            rates[v] = pack_rate(by_size, k)
    if not rates:
        return default, (f"the flags as set: no rate measured for {exp.model} on {kind} at a pack of {k} "
                         f"in {path} (`make bench` measures them)")
    best = max(rates, key=lambda v: (rates[v], v == default))
    base = f"; {default.name} {rates[default]:,.0f}" if default in rates and best != default else ""
    return best, f"fastest measured at a pack of {k}: {rates[best]:,.0f} ticket-img/s{base} ({path})"
