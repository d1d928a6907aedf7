"""The Makefile pipeline: plans, params validation at the command line, rename-on-success, and a smoke
run of the CIFAR-10 ResNet-20 grid's notebooks on tiny generated CIFAR-format data."""
import os
import re
import subprocess
import sys
from pathlib import Path


from lthlib.plan import render

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def make(*args, timeout=600):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=ENV)


def test_plan_has_one_target_per_setting_lr_seed_with_dependencies():
    grid, text = render("params/cifar10_resnet20.yaml", {})
    assert grid == "cifar10_resnet20"
    rules = re.findall(r"^(\$\(OUT\)/\S+\.ipynb): (.*)$", text, flags=re.M)
    runs = [t for t, _ in rules if "/notebooks/" in t]
    assert len(runs) == 7 * 2 * 3
    deps = dict(rules)
    nb = "$(OUT)/cifar10_resnet20/notebooks"
    assert f"{nb}/pretrain_lr0.1_s2.ipynb" in deps[f"{nb}/lt_imp_lr0.1_s2.ipynb"]
    assert f"{nb}/lt_imp_lr0.01_s3.ipynb" in deps[f"{nb}/rr_imp_lr0.01_s3.ipynb"]
    assert "random_reinit.ipynb" in deps[f"{nb}/rr_omp_lr0.1_s1.ipynb"]
    assert "-p mask_from omp" in text


def test_make_n_reproduce_cifar_shows_the_full_paper_grid(tmp_path):
    r = make("-n", "reproduce-cifar", f"OUT={tmp_path}")
    assert r.returncode == 0, r.stderr
    calls = [l for l in r.stdout.splitlines() if "papermill" in l and "/notebooks/" in l]
    assert len(calls) == 42
    assert all("-f params/cifar10_resnet20.yaml" in c for c in calls)
    for lr in ("0.1", "0.01"):
        for s in ("1", "2", "3"):
            assert any(f"-p lr {lr} -p seed {s}" in c for c in calls)
    grid = (tmp_path / "cifar10_resnet20" / "plan.mk").read_text()
    assert "Grid 'cifar10_resnet20': 2 lr x 3 seeds x 7 settings" in grid
    assert "analysis.html" in r.stdout


def test_bad_params_are_refused_before_any_work(tmp_path):
    r = make("grid", "GRID=demo", f"OUT={tmp_path}", "SET=epochz=1")
    assert r.returncode != 0
    assert "unknown key 'epochz'" in r.stderr and "Did you mean 'epochs'" in r.stderr
    r = make("grid", "GRID=demo", f"OUT={tmp_path}", "SET=epochs=ten")
    assert "key 'epochs' must be a int, got 'ten'" in r.stderr
    r = make("grid", "GRID=nonexistent", f"OUT={tmp_path}")
    assert "params/nonexistent.yaml: params file not found" in r.stderr
    assert not list(tmp_path.glob("*/notebooks/*.ipynb"))


def test_failed_notebook_is_kept_aside_and_target_only_written_on_success(tmp_path, fmnist_root):
    base = ["grid", "GRID=demo", f"OUT={tmp_path}", "JOBS=1"]
    small = "epochs=1 n_train=200 seeds=[1] lrs=[0.1] settings=[pretrain]"
    r = make(*base, f"SET={small} dataset=cifar10 data_root={tmp_path}/missing download=false")
    assert r.returncode != 0
    nb = tmp_path / "demo" / "notebooks"
    assert not (nb / "pretrain_lr0.1_s1.ipynb").exists()
    failed = nb / "pretrain_lr0.1_s1.failed.ipynb"
    assert failed.exists() and "DatasetMissingError" in failed.read_text()
    assert not list(nb.glob("*.tmp.ipynb"))
    r = make(*base, f"SET={small} data_root={fmnist_root} download=false")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert (nb / "pretrain_lr0.1_s1.ipynb").exists() and not failed.exists()
    assert (tmp_path / "demo" / "reports" / "analysis.html").exists()
    again = make(*base, f"SET={small} data_root={fmnist_root} download=false")
    assert again.returncode == 0 and "papermill" not in again.stdout  # nothing left to do


def test_cifar_grid_notebooks_smoke_on_generated_cifar(tmp_path, cifar_root):
    """The paper grid's own notebooks (reproduce-cifar), 1 epoch and 2 IMP rounds, on CPU."""
    r = make("reproduce-cifar", f"OUT={tmp_path}", f"DATA={cifar_root}", "JOBS=2",
             "SET=epochs=1 imp_rounds=2 seeds=[1] sparsities=[0.59] download=false threads=1 eval_batch_size=256")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-4000:]
    nb = tmp_path / "cifar10_resnet20" / "notebooks"
    assert len(list(nb.glob("*_lr*_s1.ipynb"))) == 14
    runs = list((tmp_path / "cifar10_resnet20" / "runs").iterdir())
    assert len(runs) == 2 * (1 + 2 + 2 + 4)
    assert all((p / "metrics.json").exists() for p in runs)
    html = (tmp_path / "cifar10_resnet20" / "reports" / "analysis.html").read_text()
    assert "Winning-ticket verdicts" in html and "<img" in html
    assert (tmp_path / "reports" / "index.html").exists()


def test_report_over_an_incomplete_grid_says_what_is_missing_and_trains_nothing(tmp_path, fmnist_root):
    sets = ["epochs=1", "n_train=200", "seeds=[1]", "lrs=[0.1]", "imp_rounds=2", f"data_root={fmnist_root}",
            "download=false"]
    plan = subprocess.run([sys.executable, "-m", "lthlib.plan", "params/demo.yaml", "--out-root", str(tmp_path),
                           *sets], cwd=ROOT, capture_output=True, text=True)
    assert plan.returncode == 0, plan.stderr
    nb = tmp_path / "demo" / "notebooks" / "pretrain_lr0.1_s1.ipynb"
    r = make("-f", plan.stdout.strip(), f"OUT={tmp_path}", str(nb))
    assert r.returncode == 0, r.stderr[-2000:]
    r = make("report", f"OUT={tmp_path}")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    runs = [p.name for p in (tmp_path / "demo" / "runs").iterdir()]
    assert len(runs) == 1 and runs[0].startswith("pretrain-")  # the report trained nothing
    html = (tmp_path / "demo" / "reports" / "analysis.html").read_text()
    assert "Completeness" in html and "no LT/RR pairs finished yet" in html
    assert (tmp_path / "reports" / "index.html").exists()
