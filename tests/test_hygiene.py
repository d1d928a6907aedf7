"""Nothing the project runs touches files outside its output root, and a dry run writes nothing: a real
notebook run through the Makefile (papermill, the 'lthlib' kernel, IPython, matplotlib in the report)
wrote ~/.jupyter/migrated, ~/.cache/matplotlib/fontlist-*.json, ~/.ipython/profile_default/... and
~/.local/share/jupyter/{notebook_secret,nbsignatures.db}; the Makefile now keeps that state under
OUT/.state. HOME is an empty folder here and the state folders tests/conftest.py gives the tests are
removed from the make's environment: what is tested is the Makefile alone."""
import os
import subprocess
from pathlib import Path

from conftest import MAKE_ENV, STATE_DIRS

ROOT = Path(__file__).resolve().parent.parent
# one one-epoch LeNet-5 notebook on the generated Fashion-MNIST, then the report (its figures: matplotlib)
TINY = ("model=lenet5 seeds=[1] lrs=[0.1] settings=[pretrain] notebooks=per_cell epochs=1 n_train=640 "
        "n_test=200 workers=1 trajectory_points=0")


def make(*args, home: Path, tmp: Path):
    env = {k: v for k, v in os.environ.items() if k not in STATE_DIRS and k not in MAKE_ENV}
    env.update(HOME=str(home), TMPDIR=str(tmp), PYTHONUNBUFFERED="1")
    return subprocess.run(["make", "--no-print-directory", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env=env, stdin=subprocess.DEVNULL)


def written(home: Path) -> list[str]:
    return sorted(str(p.relative_to(home)) for p in home.rglob("*"))


def test_a_grid_run_and_a_dry_run_write_nothing_under_home(tmp_path, fmnist_root):
    home, out, tmp = tmp_path / "home", tmp_path / "out", tmp_path / "tmp"
    home.mkdir()
    tmp.mkdir()
    args = ["grid", "GRID=demo", f"OUT={out}", f"DATA={fmnist_root}", f"SET={TINY}"]
    r = make("-n", *args, home=home, tmp=tmp)
    assert r.returncode == 0, r.stderr[-3000:]
    assert written(home) == [] and written(tmp) == [] and not out.exists()
    r = make(*args, home=home, tmp=tmp)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    # the notebook ran on the project's kernel (found in .venv/share/jupyter whatever JUPYTER_DATA_DIR is)
    assert (out / "demo" / "notebooks" / "pretrain_lr0.1_s1.ipynb").exists()
    assert (out / "demo" / "reports" / "analysis.html").exists()
    # nor in the temporary folder (IPython made a profile in a fresh /tmp folder when .state was missing)
    assert written(home) == [] and written(tmp) == []
    assert (out / ".state" / "jupyter" / "data" / "nbsignatures.db").exists()
