"""Scale-out paths on CPU: submitit's local executor, GPU slots for make -j, ImageNet notebooks on torchrun."""
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lthlib import launch
from lthlib.launch import gpu_slot

ROOT = Path(__file__).resolve().parent.parent


def make(*args, timeout=600):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_submitit_local_executor_runs_a_job_and_returns_its_exit_code(tmp_path):
    cmd = [sys.executable, "-m", "lthlib.launch", "--executor", "local", "--folder", str(tmp_path), "--",
           sys.executable, "-c", "print('job ran'); raise SystemExit(3)"]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 3, r.stderr
    assert "submitted job" in r.stdout and "job ran" in r.stdout


def test_gpu_slots_hand_each_job_its_own_gpu(tmp_path):
    held = threading.Event()
    release = threading.Event()

    def hold():
        with gpu_slot(2, tmp_path) as i:
            assert i == 0
            held.set()
            release.wait(10)
    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    r = subprocess.run([sys.executable, "-m", "lthlib.launch", "--gpu-slots", "2", "--lock-dir", str(tmp_path), "--",
                        sys.executable, "-c", "import os; print('GPU', os.environ['CUDA_VISIBLE_DEVICES'])"],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    release.set()
    t.join()
    assert r.returncode == 0 and "GPU 1" in r.stdout


@pytest.mark.slow
def test_make_grid_through_submitit_local(tmp_path, fmnist_root):
    r = make("grid", "GRID=demo", f"OUT={tmp_path}", "LAUNCH=submitit-local",
             f"SET=epochs=1 n_train=200 seeds=[1] lrs=[0.1] settings=[pretrain] data_root={fmnist_root} download=false")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "submitted job" in r.stdout
    assert (tmp_path / "demo" / "notebooks" / "pretrain_lr0.1_s1.ipynb").exists()
    assert list((tmp_path / "slurm").glob("*_log.out"))


@pytest.mark.slow
def test_imagenet_notebooks_launch_torchrun_end_to_end(tmp_path, imagenet_root):
    r = make("reproduce-imagenet", f"OUT={tmp_path}", f"DATA={imagenet_root}", "NGPU=2",
             "SET=model=resnet18 epochs=1 imp_rounds=1 sparsities=[0.5] lrs=[0.1] seeds=[1] augment=false "
             "batch_size=8 eval_batch_size=8 threads=1 settings=[pretrain,lt_imp] amp=none channels_last=false")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    nb = tmp_path / "imagenet_resnet50" / "notebooks"
    assert (nb / "pretrain_lr0.1_s1.ipynb").exists() and (nb / "lt_imp_lr0.1_s1.ipynb").exists()
    assert "launching lt_imp on 2 processes" in (nb / "lt_imp_lr0.1_s1.ipynb").read_text()
    runs = sorted((tmp_path / "imagenet_resnet50" / "runs").iterdir())
    assert len(runs) == 2 and all((p / "metrics.json").exists() for p in runs)
    assert '"processes": 2' in (runs[0] / "metrics.json").read_text()
    assert (tmp_path / "imagenet_resnet50" / "reports" / "analysis.html").exists()


def test_bad_launch_arguments_are_usage_errors_not_hangs(tmp_path, capsys):
    def usage_error(*argv):
        with pytest.raises(SystemExit) as exit_:
            launch.main(list(argv))
        assert exit_.value.code == 2
        return capsys.readouterr().err
    for n in ("-1", "0"):  # before: -1 waited forever for a slot, 0 ran unpinned
        err = usage_error("--gpu-slots", n, "--lock-dir", str(tmp_path), "--", "false")
        assert f"--gpu-slots {n}: the number of GPUs to share must be >= 1" in err
    assert "nothing after '--'" in usage_error("--gpu-slots", "2", "--")  # before: IndexError
    assert "no '--'" in usage_error("--gpu-slots", "2", "false")
    assert not list(tmp_path.iterdir())  # no lock taken
    with pytest.raises(ValueError, match=">= 1"):
        with gpu_slot(0, tmp_path):
            pass


def test_a_call_is_requeued_as_itself():
    import operator
    import submitit
    call = launch.Call(operator.add, 2, 3)
    again = call.checkpoint()
    assert isinstance(again, submitit.helpers.DelayedSubmission) and again.function.args == (2, 3)
    assert again.function() == call() == 5


@pytest.mark.slow  # 4 submitit jobs (a process each): ~10 s
def test_run_calls_waits_for_every_job_and_names_the_failed_one(tmp_path):
    import operator
    ex = launch.executor("local", tmp_path)
    assert launch.run_calls([launch.Call(operator.add, 1, 2), launch.Call(operator.mul, 3, 4)], ex, "pack") == [3, 12]
    with pytest.raises(RuntimeError, match=r"1 of 2 packs failed: job \d+ \(ZeroDivisionError: division by zero; log \S+_log\.err\)$"):
        launch.run_calls([launch.Call(operator.truediv, 1, 0), launch.Call(operator.add, 1, 1)], ex, "pack")
    with pytest.raises(ValueError, match="kind 'pbs'; accepted: slurm, local"):
        launch.executor("pbs", tmp_path)
