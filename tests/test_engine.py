"""The run engine: broken runs are named and retrained, one folder is never locked twice, determinism
switches are set and recorded, and the data-order ablation pairs LT and RR on a fresh order."""
import json
import threading

import pytest
import torch

import lthlib as L
from lthlib import engine
from lthlib.settings import lt_data_seed, rr_seeds


@pytest.mark.parametrize("damage", ["delete_final", "empty_metrics", "null_metrics", "truncated_metrics",
                                    "empty_history", "delete_init"])
def test_a_broken_finished_run_is_reported_and_retrained(tiny_exp, capsys, damage):
    exp = tiny_exp(epochs=1)
    pre = L.pretrain(exp)
    acc = pre.read_metrics()["final_test_acc"]
    {"delete_final": lambda: pre.final.unlink(), "empty_metrics": lambda: pre.metrics.write_text("{}"),
     "null_metrics": lambda: pre.metrics.write_text("null"),
     "truncated_metrics": lambda: pre.metrics.write_text(pre.metrics.read_text()[:20]),
     "empty_history": lambda: pre.history.write_text(""), "delete_init": lambda: pre.init.unlink()}[damage]()
    assert not pre.finished() and pre.problem()
    again = L.pretrain(exp)
    assert again.path == pre.path and again.finished()
    assert again.read_metrics()["final_test_acc"] == acc  # CPU: bitwise the same run
    assert f"{pre.path}: broken run" in capsys.readouterr().out


def test_the_advice_of_a_corrupt_weights_error_works(tiny_exp, capsys):
    """'Delete the file and run again' must lead somewhere (issue 11.6): a truncated final.pt is named,
    loading it is a clear error with that advice, and running again retrains the run."""
    exp = tiny_exp(epochs=1)
    pre = L.pretrain(exp)
    pre.final.write_bytes(pre.final.read_bytes()[:200])
    assert not pre.finished() and "final.pt" in pre.problem()
    with pytest.raises(L.CheckpointError, match="Delete the file"):
        pre.load_final()
    assert all(r.finished() for r in L.lt_omp(exp))
    assert f"{pre.path}: broken run" in capsys.readouterr().out


def test_the_same_run_twice_in_one_pack_trains_once_and_does_not_hang(tiny_exp):
    """Duplicate sparsities used to lock one folder twice in a pack and wait forever (issue 11.4)."""
    exp = tiny_exp(epochs=1, pack="on")
    out = []
    t = threading.Thread(target=lambda: out.append(L.lt_omp(exp, sparsities=[0.5, 0.5, 0.7])), daemon=True)
    t.start()
    t.join(120)
    assert not t.is_alive(), "lt_omp with a repeated sparsity hung"
    runs = out[0]
    assert runs[0].path == runs[1].path and runs[0].finished() and runs[2].finished()
    assert runs[2].read_metrics()["packed_with"] == [runs[0].name, runs[2].name]


def test_determinism_switches_are_set_and_recorded(tiny_exp):
    try:
        rd = L.pretrain(tiny_exp(epochs=1, deterministic=True))
        assert torch.are_deterministic_algorithms_enabled()
        det = rd.read_config()["determinism"]
        assert det["deterministic"] is True and det["cudnn_benchmark"] is False and det["tf32"] is False
        assert det["cublas_workspace_config"] in (":4096:8", ":16:8")
        # not part of the identity: on the CPU the run is the same either way
        assert rd.path == L.pretrain(tiny_exp(epochs=1)).path
        L.pretrain(tiny_exp(epochs=1, lr=0.02))  # a run without the switch turns them off again
        assert not torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(False)


def test_data_order_fresh_pairs_lt_and_rr_on_an_order_the_dense_run_did_not_use(tiny_exp):
    replay, fresh = tiny_exp(epochs=1), tiny_exp(epochs=1, data_order="fresh")
    assert lt_data_seed(replay) == replay.seed and rr_seeds(replay)[1] == replay.seed
    assert lt_data_seed(fresh) == rr_seeds(fresh)[1] != fresh.seed
    pre = L.pretrain(fresh)
    assert pre.path == L.pretrain(replay).path  # the dense run does not depend on the ablation
    lt, rr = L.lt_omp(fresh)[0], L.rr_omp(fresh)[0]
    lt_id, rr_id, pre_id = (r.read_config()["identity"] for r in (lt, rr, pre))
    assert lt_id["data_seed"] == rr_id["data_seed"] != pre_id["data_seed"]
    assert lt_id["data_order"] == "fresh" and "data_order" not in pre_id
    assert lt_id["init_seed"] == pre_id["init_seed"] != rr_id["init_seed"]
    lt_replay = L.lt_omp(replay)[0]
    assert lt_replay.path != lt.path and lt_replay.read_config()["identity"]["data_seed"] == pre_id["data_seed"]
    # the data order really differs: same start and mask, different trained weights
    assert all(torch.equal(lt.load_init()[k], lt_replay.load_init()[k]) for k in lt.load_init())
    assert any(not torch.equal(a, b) for a, b in zip(lt.load_final().values(), lt_replay.load_final().values()))


def test_eval_every_skips_test_passes_but_not_the_last(tiny_exp):
    rd = L.pretrain(tiny_exp(epochs=3, eval_every=2))
    rows = rd.history.read_text().strip().splitlines()[1:]
    test_acc = [r.split(",")[5] for r in rows]
    assert test_acc[0] == "nan" and test_acc[1] != "nan" and test_acc[2] != "nan"
    met = rd.read_metrics()
    assert met["final_test_acc"] == float(test_acc[2]) and met["best_epoch_secondary"] in (2, 3)
