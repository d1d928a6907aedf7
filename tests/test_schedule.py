"""Packs that span seeds and learning rates, and the grid scheduler (PACK=grid): one process, device
slots (NGPU=N) and Slurm jobs (LAUNCH=slurm, through submitit's local executor here)."""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import lthlib as L
from lthlib import engine, schedule


def _close(a, b, rel=0.05):
    """Same start; final weights differ by < ``rel`` of the training update (float noise), per tensor."""
    fa, fb, init = a.load_final(), b.load_final(), a.load_init()
    assert all(torch.equal(init[k], b.load_init()[k]) for k in init), a.name
    for k in fa:
        if fa[k].is_floating_point() and "running" not in k:
            assert (fa[k] - fb[k]).norm() <= rel * (fa[k] - init[k]).norm() + 1e-6, (a.name, k)
    assert abs(a.read_metrics()["final_test_acc"] - b.read_metrics()["final_test_acc"]) <= 1.0


def test_a_pack_of_two_seeds_and_two_lrs_equals_the_four_runs_alone(tiny_exp, tmp_path):
    def cells(root, pack):
        base = tiny_exp(out_root=str(root), pack=pack, epochs=2, lrs=[0.05, 0.02], seeds=[1, 2],
                        weight_decay=1e-3)
        return [base.replace(lr=lr, seed=s) for lr in base.lrs for s in base.seeds]
    alone = [L.pretrain(e) for e in cells(tmp_path / "alone", "off")]
    plans = [L.settings.plan(e, "pretrain")[0] for e in cells(tmp_path / "packed", "on")]
    assert len({p.data_seed for p in plans}) == 2 and len({p.cell.lr for p in plans}) == 2
    waves = []
    engine.realize(plans, lambda k, ready: waves.append(len(ready)))
    assert waves == [4]  # one wave: the four runs train as one pack
    packed = [L.pretrain(e) for e in cells(tmp_path / "packed", "on")]
    assert [r.name for r in alone] == [r.name for r in packed]
    assert packed[0].read_metrics()["packed_with"] == [r.name for r in packed]
    for a, b in zip(alone, packed):
        _close(a, b)
        lrs = [float(line.split(",")[1]) for line in b.history.read_text().splitlines()[1:]]
        assert lrs[0] == b.read_config()["identity"]["lr"]  # each ticket records its own lr


def _grid(tiny_exp, root, pack):
    return tiny_exp(out_root=str(root), pack=pack, epochs=2, lrs=[0.05, 0.02], seeds=[1, 2], imp_rounds=2,
                    sparsities=[0.5])


def test_pack_grid_gives_the_folders_and_accuracies_of_notebook_by_notebook(tiny_exp, tmp_path, capsys):
    base = _grid(tiny_exp, tmp_path / "nb", "off")
    one_by_one = {}
    for lr in base.lrs:
        for seed in base.seeds:
            for s in base.settings:
                for rd in L.run_setting(base.replace(lr=lr, seed=seed), s):
                    one_by_one[rd.name] = rd
    n = schedule.run_grid(_grid(tiny_exp, tmp_path / "grid", "on"))
    assert n == len(one_by_one) == 4 * (1 + 2 + 2 + 4)
    out = capsys.readouterr().out
    assert "step 1: 4 runs ready (pretrain)" in out and "step 4:" in out and "step 5:" not in out
    grid = {p.name: L.RunDir(p) for p in (tmp_path / "grid" / "t" / "runs").iterdir()}
    assert set(grid) == set(one_by_one)
    mates = [len(rd.read_metrics()["packed_with"] or []) for rd in grid.values()]
    assert max(mates) >= 8  # the one-shot settings of all four cells train together
    crossing = [rd for rd in grid.values() if len({n.split("-")[3] for n in rd.read_metrics()["packed_with"] or []}) > 1]
    assert crossing, "no pack spans two learning rates"
    for name, rd in grid.items():
        assert abs(rd.read_metrics()["final_test_acc"] - one_by_one[name].read_metrics()["final_test_acc"]) <= 2.0
    # the notebooks afterwards find everything finished
    assert schedule.run_grid(_grid(tiny_exp, tmp_path / "grid", "on")) == 0


def test_a_killed_grid_pack_resumes_to_the_same_weights(tiny_exp, tmp_path):
    ref = _grid(tiny_exp, tmp_path / "ref", "on").replace(settings=["pretrain", "lt_omp", "rr_omp"], epochs=3)
    schedule.run_grid(ref)
    cut = ref.replace(out_root=str(tmp_path / "cut"))
    script = textwrap.dedent(f"""
        import os, signal, torch, lthlib as L
        import lthlib.training as T
        from lthlib import schedule
        torch.set_num_threads(1)
        saves = [0]
        real = T.atomic_torch_save
        def dying(obj, path):
            real(obj, path)
            saves[0] += 1
            if saves[0] == 3:   # mid-way through the second step's pack
                os.kill(os.getpid(), signal.SIGKILL)
        T.atomic_torch_save = dying
        schedule.run_grid(L.load(None, {cut.as_dict()!r}))
    """)
    assert subprocess.run([sys.executable, "-c", script], capture_output=True).returncode == -9
    schedule.run_grid(cut)
    for p in (tmp_path / "ref" / "t" / "runs").iterdir():
        a, b = L.RunDir(p).load_final(), L.RunDir(tmp_path / "cut" / "t" / "runs" / p.name).load_final()
        assert all(torch.equal(a[k], b[k]) for k in a), p.name


def test_schedule_cli_help_and_errors(tmp_path):
    ok = subprocess.run([sys.executable, "-m", "lthlib.schedule", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "python -m lthlib.schedule" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "lthlib.schedule", str(tmp_path / "none.yaml")],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "none.yaml: params file not found" in bad.stderr
    bad = subprocess.run([sys.executable, "-m", "lthlib.schedule", "params/demo.yaml", "--set", "epochz=1"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "SET: unknown key 'epochz'" in bad.stderr


def test_workers_train_a_wave_in_processes_with_the_same_results(tiny_exp, tmp_path):
    """workers: 2 trains each wave's runs in two processes: the same folders, bitwise the same weights."""
    one = _grid(tiny_exp, tmp_path / "one", "off").replace(settings=["pretrain", "lt_omp"], epochs=1)
    two = one.replace(out_root=str(tmp_path / "two"), workers=2)
    assert schedule.run_grid(one) == schedule.run_grid(two) == 8
    for p in (tmp_path / "one" / "t" / "runs").iterdir():
        a, b = L.RunDir(p).load_final(), L.RunDir(tmp_path / "two" / "t" / "runs" / p.name).load_final()
        assert all(torch.equal(a[k], b[k]) for k in a), p.name


# ----------------------------------------------------------------------------- scale out: device slots, Slurm
def _packed_grid(tiny_exp, root, **kw):
    """One wave of two packs: 4 dense runs (2 lrs x 2 seeds) in packs of 2 (waves follow one another the
    same way through any dispatch: ``engine.realize``)."""
    return tiny_exp(out_root=str(root), pack="on", pack_size=2, epochs=1, lrs=[0.05, 0.02], seeds=[1, 2],
                    settings=["pretrain"], **kw)


def _same_bits(a_root, b_root):
    names = sorted(p.name for p in (a_root / "t" / "runs").iterdir())
    assert names == sorted(p.name for p in (b_root / "t" / "runs").iterdir()) and len(names) == 4
    for name in names:
        a, b = L.RunDir(a_root / "t" / "runs" / name), L.RunDir(b_root / "t" / "runs" / name)
        fa, fb = a.load_final(), b.load_final()
        assert all(torch.equal(fa[k], fb[k]) for k in fa), name
        assert a.read_metrics()["packed_with"] == b.read_metrics()["packed_with"], name
    return [L.RunDir(b_root / "t" / "runs" / n) for n in names]


def test_a_waves_packs_on_device_slots_and_as_submitit_jobs_are_bitwise_the_serial_ones(tiny_exp, tmp_path):
    """NGPU=2 (two worker processes, a device slot each) and LAUNCH=slurm (each pack one submitit job;
    here submitit's local executor) train the same folders as one process, bitwise on the CPU."""
    from lthlib import launch
    assert schedule.run_grid(_packed_grid(tiny_exp, tmp_path / "serial")) == 4
    assert schedule.run_grid(_packed_grid(tiny_exp, tmp_path / "slots"), schedule.device_slots(2)) == 4
    runs = _same_bits(tmp_path / "serial", tmp_path / "slots")
    assert {r.read_config()["device_slot"] for r in runs} <= {"0", "1"}
    ex = launch.executor("local", tmp_path / "slurm")
    assert schedule.run_grid(_packed_grid(tiny_exp, tmp_path / "jobs"), schedule.submitit_jobs(ex)) == 4
    _same_bits(tmp_path / "serial", tmp_path / "jobs")
    assert len(list((tmp_path / "slurm").glob("*_result.pkl"))) == 2  # one job per pack
    assert schedule.run_grid(_packed_grid(tiny_exp, tmp_path / "jobs"), schedule.submitit_jobs(ex)) == 0


def _children(pid: int) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        try:
            if d.name.isdigit() and int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(d.name))
        except OSError:
            continue
    return out


@pytest.mark.slow  # a submitit job started twice (~12 s); the bitwise dispatch test above runs in CI
def test_a_preempted_pack_job_is_requeued_and_resumes_to_the_uninterrupted_weights(tiny_exp, tmp_path):
    """Slurm's preemption signal (SIGUSR2) mid-pack: submitit requeues the pack (``launch.Call.checkpoint``),
    which resumes from the pack's last epoch checkpoint and ends with the weights of an uninterrupted pack."""
    from lthlib import launch, settings
    kw = dict(pack="on", epochs=3, batch_size=16, lrs=[0.05, 0.02], settings=["pretrain"])
    ref = [p for lr in (0.05, 0.02) for p in settings.plan(tiny_exp(out_root=str(tmp_path / "ref"), lr=lr, **kw), "pretrain")]
    engine.train_chunk(ref)
    plans = [p for lr in (0.05, 0.02) for p in settings.plan(tiny_exp(out_root=str(tmp_path / "cut"), lr=lr, **kw), "pretrain")]
    job = launch.executor("local", tmp_path / "slurm").submit(launch.Call(engine.train_chunk, plans))
    t0 = time.time()
    while not plans[0].folder.checkpoint.exists() and time.time() - t0 < 120:
        time.sleep(0.01)
    for pid in _children(int(job.job_id)):  # the task under submitit's local controller
        os.kill(pid, signal.SIGUSR2)
    job.result()
    log = job.stdout()
    assert "this job is preempted" in job.stderr(), job.stderr()[-2000:]
    assert "Requeued job" in log and "resuming after epoch" in log, log[-2000:]
    for a, b in zip(ref, plans):
        fa, fb = a.folder.load_final(), b.folder.load_final()
        assert all(torch.equal(fa[k], fb[k]) for k in fa), b.name


def test_schedule_cli_scale_out_options_are_checked(capsys, tmp_path):
    # no data and no download: should a check let it through, it fails with another message, writing only
    # under tmp_path -- it never trains
    grid = ["params/demo.yaml", f"out_root={tmp_path}", f"data_root={tmp_path / 'none'}", "download=false"]
    with pytest.raises(SystemExit) as exit_:
        schedule.main(grid + ["--ngpu", "2", "--executor", "local", "--folder", str(tmp_path / "slurm")])
    assert exit_.value.code == 2 and "--ngpu and --executor: give one" in capsys.readouterr().err
    assert schedule.main(grid + ["--ngpu", "0"]) == 2
    assert "NGPU=0: the number of GPUs (device slots) must be >= 1" in capsys.readouterr().err
    assert schedule.main(grid + ["--ngpu", "2", "device=cuda:1"]) == 2
    assert "key 'device' 'cuda:1' with NGPU=2: each pack takes the GPU of its own slot" in capsys.readouterr().err
