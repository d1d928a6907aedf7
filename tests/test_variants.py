"""Step variants: names, and which one a pack trains with, chosen from a made-up rates.json."""
import json

import pytest

from lthlib import variants
from lthlib.errors import ConfigError
from lthlib.variants import Variant, choose, parse


def _rates(exp, table: dict, kind: str = "cpu") -> None:
    path = exp.out_root + "/bench/rates.json"
    import pathlib
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    pathlib.Path(path).write_text(json.dumps({exp.model: {kind: {"pack_rates": {"1": 1.0}, "variants": {
        name: {str(k): r for k, r in by_size.items()} for name, by_size in table.items()}}}}))


def test_variant_names_parse_to_their_parts_and_back():
    for name in ("eager", "graph", "compile+graph", "bf16+graph", "compile+bf16+graph", "reduce-overhead",
                 "sub1x1+graph", "s2d+compile+graph", "s2d"):
        assert parse(name).name == name
    assert parse("graph+sub1x1") == Variant(cuda_graph=True, strided="subsample")
    assert parse("compile+bf16+graph") == Variant(True, "default", "off", "bf16")
    for bad, why in (("graf", "parts joined by"), ("", "parts joined by"), ("graph+graph", "at most once"),
                     ("eager+graph", "without parts"), ("s2d+sub1x1", "s2d includes sub1x1"),
                     ("reduce-overhead+graph", "drop graph")):
        with pytest.raises(ConfigError, match=why):
            parse(bad)


def test_without_measured_rates_a_pack_keeps_the_flags_as_set(tiny_exp):
    exp = tiny_exp()
    v, why = choose(exp, 4, "cpu")
    assert v == variants.from_flags(exp) == Variant() and "no rate measured" in why and "rates.json" in why
    flagged = tiny_exp(cuda_graph=True, compile=True)
    assert choose(flagged, 4, "gpu")[0].name == "compile+graph"


def test_the_fastest_measured_variant_of_the_recipe_numerics_is_chosen_per_pack_size(tiny_exp):
    exp = tiny_exp()
    _rates(exp, {"eager": {1: 100, 16: 400}, "sub1x1+graph": {1: 90, 16: 800}, "s2d+graph": {4: 1000, 8: 1000},
                 "bf16+graph": {1: 5000, 16: 9000}, "gpu-magic": {1: 10 ** 6}})
    assert choose(exp, 1, "cpu")[0].name == "eager"  # sub1x1 slower alone; s2d not measured at 1
    v, why = choose(exp, 2, "cpu")  # eager 120, sub1x1+graph 137 (linear between 1 and 16)
    assert v.name == "sub1x1+graph" and "fastest measured at a pack of 2: 137 ticket-img/s; eager 120" in why
    assert choose(exp, 6, "cpu")[0].name == "s2d+graph"
    assert choose(exp, 12, "cpu")[0].name == "sub1x1+graph"  # beyond s2d's measured sizes: not extrapolated
    assert choose(exp, 4, "gpu")[0] == Variant()  # nothing measured on the GPU: the flags
    assert all(choose(exp, k, "cpu")[0].amp == "none" for k in (1, 4, 16))  # bf16 never for an fp32 recipe
    bf16 = tiny_exp(amp="bf16")
    _rates(bf16, {"eager": {1: 100}, "bf16+graph": {1: 50}, "compile+bf16+graph": {1: 60}})
    assert choose(bf16, 1, "cpu")[0].name == "compile+bf16+graph"  # a bf16 recipe: among bf16 variants
    mixup = tiny_exp(mixup=0.2)
    _rates(mixup, {"eager": {1: 100}, "graph": {1: 500}})
    assert choose(mixup, 1, "cpu")[0].name == "eager"  # a captured step cannot hold mixup


def test_a_tie_keeps_the_default_and_a_bad_rates_file_is_named(tiny_exp):
    exp = tiny_exp()
    _rates(exp, {"graph": {1: 100}, "eager": {1: 100}})
    assert choose(exp, 1, "cpu")[0].name == "eager"
    path = exp.out_root + "/bench/rates.json"
    for text in ('{"lenet5": {"cpu": {"variants": {"eager": {"x": 1}}}}}', "[1, 2]",
                 '{"lenet5": {"cpu": {"variants": {"eager": {"1": -5}}}}}',
                 '{"lenet5": {"cpu": {"variants": {"eager": {"1": NaN}}}}}'):
        with open(path, "w") as f:
            f.write(text)
        with pytest.raises(ConfigError, match=f"{path}: .*run `make bench` again or delete the file"):
            choose(exp, 1, "cpu")


def test_a_forced_variant_is_checked_against_the_run(tiny_exp):
    exp = tiny_exp()
    exp = exp.replace(step_variant="sub1x1+graph")
    assert choose(exp, 3, "cpu") == (parse("sub1x1+graph"), "step_variant: sub1x1+graph")
    exp = exp.replace(step_variant="flags")
    assert choose(exp, 3, "cpu")[0] == Variant()
    exp = exp.replace(step_variant="bf16+graph")
    with pytest.raises(ConfigError, match="step_variant.*own numerics"):
        choose(exp, 3, "cpu")
