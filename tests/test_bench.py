"""The bench's whole-study estimate and its rates.json, which the engine's variant choice reads."""
import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from lthlib import schedule, variants

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def bench(tmp_path, monkeypatch):
    """bench/bench_training.py as a module, its project root a temporary folder whose params/ holds one
    paper grid of ResNet-20 (Table 4, 147 runs), a Fashion-MNIST one and the demo (not paper grids)."""
    spec = importlib.util.spec_from_file_location("bench_training", ROOT / "bench" / "bench_training.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    (tmp_path / "params").mkdir()
    for name in ("cifar10_resnet20_table4_lr0.1", "fmnist_resnet20_10ep", "demo"):
        shutil.copy(ROOT / "params" / f"{name}.yaml", tmp_path / "params")
    monkeypatch.setattr(mod, "ROOT", tmp_path)
    return mod


def test_the_whole_study_estimate_per_variant_and_auto(bench):
    rates = {"eager": {1: 1000.0, 16: 20000.0, 64: 32000.0}, "graph": {1: 3000.0, 16: 10000.0, 64: 30000.0},
             "bf16+graph": {1: 9000.0, 64: 90000.0}}
    study = bench.study_estimates("resnet20", "cifar10", rates, official=2000.0, packed=True)
    assert list(study) == ["cifar10_resnet20_table4_lr0.1"]  # Fashion-MNIST and the demo are not the paper's
    row = study["cifar10_resnet20_table4_lr0.1"]
    assert row["runs"] == 3 * (1 + 4 * (11 + 1)) and row["pack_size"] == 64
    packs = schedule.packs(bench.paper_grids("resnet20", "cifar10")[0])
    assert sum(k for k, _ in packs) == row["runs"] and sorted({k for k, _ in packs}) == [3, 12, 24]
    h = row["hours"]
    assert set(h) == {"eager", "graph", "bf16+graph", "auto"}
    assert h["auto"] < min(h["eager"], h["graph"])  # graph wins the packs of 3, eager those of 12 and 24
    assert h["bf16+graph"] < h["auto"]  # bf16 is faster, and still not what auto (the engine) picks
    flat = bench.study_estimates("resnet20", "cifar10", {"eager": {1: 4000.0}}, 2000.0, packed=True)
    one = flat["cifar10_resnet20_table4_lr0.1"]
    assert one["hours"] == {"eager": pytest.approx(one["official_hours"] / 2)}  # twice the official rate
    cpu = bench.study_estimates("resnet20", "cifar10", {"processes": {1: 4000.0}}, 2000.0, packed=False)
    assert cpu["cifar10_resnet20_table4_lr0.1"]["pack_size"] == 1
    assert cpu["cifar10_resnet20_table4_lr0.1"]["hours"]["processes"] == pytest.approx(one["hours"]["eager"])


def test_the_rates_the_bench_writes_choose_the_engines_variant(bench, tiny_exp, tmp_path):
    import torch
    found = {"eager": {1: 100.0, 8: 800.0}, "sub1x1+graph": {1: 90.0, 8: 1600.0}, "bf16+graph": {1: 10 ** 5, 8: 10 ** 6}}
    bench.save_rates("lenet5", torch.device("cpu"), found["sub1x1+graph"], 500.0, "sub1x1+graph", found,
                     {"g": {"hours": {"eager": 1.0}}})
    doc = json.loads((tmp_path / "outputs" / "bench" / "rates.json").read_text())
    assert doc["lenet5"]["cpu"]["study"] == {"g": {"hours": {"eager": 1.0}}}
    assert not list((tmp_path / "outputs" / "bench").glob("*.tmp*"))  # written to a temporary name, renamed
    exp = tiny_exp(out_root=str(tmp_path / "outputs"))
    assert variants.choose(exp, 1, "cpu")[0].name == "eager"
    assert variants.choose(exp, 4, "cpu")[0].name == "sub1x1+graph"
