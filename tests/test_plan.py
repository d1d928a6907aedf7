"""The Makefile pipeline: plans, params validation at the command line, rename-on-success, re-execution
when parameters change, no make injection, exact values, safe cleaning, the study tier's plan, and a
smoke run of the CIFAR-10 ResNet-20 grid's notebooks on tiny generated CIFAR-format data."""
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import CLASSIC_SETTINGS
from papermill.iorw import NoDatesSafeLoader, read_yaml_file

from lthlib import ConfigError
from lthlib.models import MODELS
from lthlib.plan import build, estimate_hours, mk_escape, parse_sets, read_rates, split_set

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def make(*args, timeout=600, cwd=ROOT):
    return subprocess.run(["make", "--no-print-directory", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=ENV, stdin=subprocess.DEVNULL)


def plan_cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "lthlib.plan", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


def injected(notebook: Path) -> dict:
    """The parameters papermill injected into an executed notebook."""
    cell = next(c for c in json.loads(notebook.read_text())["cells"]
                if "injected-parameters" in c["metadata"].get("tags", []))
    scope = {}
    exec("".join(cell["source"]), {}, scope)
    return scope


def test_plan_has_one_target_per_setting_lr_seed_with_dependencies(tmp_path):
    plan = build("params/cifar10_resnet20.yaml", {}, str(tmp_path))
    assert plan.grid == "cifar10_resnet20"
    rules = re.findall(r"^(\$\(OUT\)/\S+\.ipynb): (.*)$", plan.text, flags=re.M)
    runs = [t for t, _ in rules if "/notebooks/" in t]
    assert len(runs) == 10 * 6 * 3  # every setting at the paper's six lrs, 3 seeds
    deps = dict(rules)
    nb = "$(OUT)/cifar10_resnet20/notebooks"
    assert f"{nb}/pretrain_lr0.1_s2.ipynb" in deps[f"{nb}/lt_imp_lr0.1_s2.ipynb"]
    assert f"{nb}/lt_imp_lr0.01_s3.ipynb" in deps[f"{nb}/rr_imp_lr0.01_s3.ipynb"]
    assert "random_reinit.ipynb" in deps[f"{nb}/rr_omp_lr0.1_s1.ipynb"]
    # every notebook depends on the file holding the parameters it is executed with
    assert all(f"{t[:-6]}.params.yaml" in deps[t] for t in runs)
    rr = yaml.safe_load(plan.params["cifar10_resnet20/notebooks/rr_omp_lr0.1_s1.params.yaml"])
    assert rr == {"params_file": "params/cifar10_resnet20.yaml", "lr": 0.1, "seed": 1, "mask_from": "omp",
                  "overrides": {"out_root": str(tmp_path)}}
    assert len(plan.params) == len(runs) + 1  # + the analysis notebook's


def test_make_n_reproduce_cifar_shows_the_full_paper_grid(tmp_path):
    r = make("-n", "reproduce-cifar", f"OUT={tmp_path}")
    assert r.returncode == 0, r.stderr
    calls = [l for l in r.stdout.splitlines() if "papermill" in l and "/notebooks/" in l]
    assert len(calls) == 180
    assert any("/notebooks/sdt_lr0.15_s3" in c for c in calls) and any("/notebooks/wr_imp_lr0.001_s1" in c for c in calls)
    for lr in ("0.001", "0.005", "0.01", "0.05", "0.1", "0.15"):
        for s in ("1", "2", "3"):
            params = tmp_path / "cifar10_resnet20" / "notebooks" / f"lt_omp_lr{lr}_s{s}.params.yaml"
            assert any(f"-f {params}" in c for c in calls)
            assert f"new parameters: {params}" in r.stdout  # what a real run would write
    assert "analysis.html" in r.stdout
    assert "2286 runs of resnet20 x 160 epochs = 365,760 ticket-epochs" in r.stderr
    assert not list(tmp_path.iterdir())  # a dry run writes nothing: no plan.mk, no parameter file


def test_bad_params_are_refused_before_any_work(tmp_path):
    r = make("grid", "GRID=demo", f"OUT={tmp_path}", "SET=epochz=1")
    assert r.returncode != 0
    assert "unknown key 'epochz'" in r.stderr and "Did you mean 'epochs'" in r.stderr
    r = make("grid", "GRID=demo", f"OUT={tmp_path}", "SET=epochs=ten")
    assert "key 'epochs' must be a int, got 'ten'" in r.stderr
    r = make("grid", "GRID=nonexistent", f"OUT={tmp_path}")
    assert "params/nonexistent.yaml: params file not found" in r.stderr
    assert not list(tmp_path.glob("*/notebooks/*.ipynb"))


def test_an_empty_grid_axis_is_an_error_exit_2(tmp_path):
    values = yaml.safe_load((ROOT / "params" / "demo.yaml").read_text())
    for key in ("lrs", "seeds", "settings"):
        params = tmp_path / f"{key}.yaml"
        params.write_text(yaml.safe_dump({**values, key: []}))
        with pytest.raises(ConfigError, match=f"^{params}: key {key!r} is empty"):
            build(str(params), {})
    r = plan_cli(tmp_path / "lrs.yaml", "--out-root", tmp_path)
    assert r.returncode == 2 and r.stderr.startswith(f"error: {tmp_path / 'lrs.yaml'}: key 'lrs' is empty"), r.stderr
    r = plan_cli("params/demo.yaml", "--out-root", tmp_path, "--set", "settings=[]")
    assert r.returncode == 2 and r.stderr.startswith("error: SET: key 'settings' is empty"), r.stderr
    assert not list(tmp_path.glob("*/plan.mk"))


def test_lr_reaches_the_notebook_exactly_and_close_lrs_are_two_targets(tmp_path):
    plan = build("params/demo.yaml", parse_sets(["lrs=[0.1, 0.10000001, 0.0012345678]", "seeds=[1, 2]",
                                                 "notebooks=per_cell"]), str(tmp_path))
    names = sorted(p.split("/")[-1] for p in plan.params if "/pretrain_" in p)
    assert names == sorted(f"pretrain_lr{lr}_s{s}.params.yaml" for lr in ("0.1", "0.10000001", "0.0012345678")
                           for s in (1, 2))
    for lr in (0.1, 0.10000001, 0.0012345678):
        text = next(t for p, t in plan.params.items() if p.endswith(f"/lt_omp_lr{lr!r}_s1.params.yaml"))
        assert yaml.load(text, Loader=NoDatesSafeLoader)["lr"] == lr
    assert len(re.findall(r"^\S+/pretrain_lr\S+\.ipynb:", plan.text, flags=re.M)) == 6


def test_mk_escape_reads_back_literally_and_refuses_line_breaks(tmp_path):
    value = "a$(shell touch pwned)b #c $HOME $$d \\e"
    (tmp_path / "m.mk").write_text(f"X := {mk_escape(value, 'v')}\nall:\n\t@printf '%s\\n' '$(X)'\n")
    r = make("-f", "m.mk", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout == value + "\n" and not (tmp_path / "pwned").exists()
    with pytest.raises(ConfigError, match="line break"):
        mk_escape("a\nb", "key description")


def test_set_values_reach_the_notebook_as_written_and_make_n_runs_nothing(tmp_path):
    evil = f"$(shell touch {tmp_path}/pwned) #not a comment $HOME `touch {tmp_path}/pwned2` 'q'"
    assert split_set(f'description="{evil}" epochs=2') == [f"description={evil}", "epochs=2"]
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}",
             f'SET=description="{evil}" seeds=[1] lrs=[0.1] notebooks=per_cell')
    assert r.returncode == 0, r.stderr
    assert "papermill" in r.stdout and not list(tmp_path.glob("pwned*")) and not list(tmp_path.iterdir())
    r = plan_cli("params/demo.yaml", "--out-root", tmp_path, "--set",
                 f'description="{evil}" seeds=[1] lrs=[0.1] notebooks=per_cell')  # what make grid writes
    assert r.returncode == 0 and not list(tmp_path.glob("pwned*")), r.stderr
    params = read_yaml_file(str(tmp_path / "demo" / "notebooks" / "lt_imp_lr0.1_s1.params.yaml"))
    assert params["overrides"] == {"description": evil, "notebooks": "per_cell", "out_root": str(tmp_path)}
    assert read_yaml_file(str(tmp_path / "demo" / "reports" / "analysis.params.yaml"))["overrides"] == {
        "description": evil, "seeds": [1], "lrs": [0.1], "notebooks": "per_cell", "out_root": str(tmp_path)}
    # a name is a name: make syntax in it is refused, not run
    r = make("-n", "grid", "GRID=demo", f"OUT={tmp_path}", f'SET=name="x$(shell touch {tmp_path}/pwned)"')
    assert r.returncode != 0 and "key 'name'" in r.stderr and not list(tmp_path.glob("pwned*"))
    # a params file whose path holds make syntax: plan.mk keeps it literal
    odd = tmp_path / "p$(shell touch pwned3)#x.yaml"
    shutil.copy(ROOT / "params" / "demo.yaml", odd)
    r = plan_cli(odd, "--out-root", tmp_path / "o", "seeds=[1]")
    assert r.returncode == 0, r.stderr
    (tmp_path / "show.mk").write_text("show:\n\t@printf 'PARAMS=[%s]\\n' '$(PARAMS)'\n")
    r = make("-n", "-f", r.stdout.strip(), f"OUT={tmp_path / 'o'}", "runs")
    assert r.returncode == 0 and "papermill" in r.stdout, r.stderr
    r = make("-f", str(tmp_path / "o" / "demo" / "plan.mk"), "-f", str(tmp_path / "show.mk"), "show")
    assert r.stdout == f"PARAMS=[{odd}]\n", r.stderr
    assert not list(tmp_path.rglob("pwned*")) and not list(ROOT.glob("pwned*"))


def test_plan_size_and_estimate_from_rates(tmp_path):
    plan = build("params/cifar10_resnet20.yaml", {}, str(tmp_path))
    size = plan.size
    # 18 cells x (dense, 14 LT-IMP, 14 RR-IMP, 4 one-shot settings x 14, 14 SDT, 14 WR-IMP, 14 WR-OMP)
    assert size["runs"] == 18 * (1 + 14 + 14 + 4 * 14 + 14 + 2 * 14) and size["ticket_epochs"] == size["runs"] * 160
    assert size["images_per_run"] == pytest.approx(160 * 50_000 + 160 * 10_000 / 3)
    rates = {"cpu": {1: 1000.0}, "gpu": {1: 8100.0, 16: 71000.0}}
    hours = estimate_hours(size, plan.exp, rates)
    assert hours["cpu"] == pytest.approx(size["runs"] * size["images_per_run"] / 1000 / 3600)
    unpacked = size["runs"] * size["images_per_run"] / 8100 / 3600
    assert unpacked / 8 < hours["gpu"] < unpacked / 2  # the 14-ticket settings pack; LT-IMP does not
    assert estimate_hours(size, plan.exp.replace(pack="off"), rates)["gpu"] == pytest.approx(unpacked)
    assert estimate_hours(size, plan.exp, {"cpu": {1: 1.0}})["gpu"] is None
    assert read_rates(str(tmp_path), "resnet20")[0] == MODELS["resnet20"].default_rates
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "rates.json").write_text(json.dumps(
        {"resnet20": {"cpu": {"pack_rates": {"1": 500.0}, "device": "cpu x2"}}}))
    measured, source = read_rates(str(tmp_path), "resnet20")
    assert measured == {"cpu": {1: 500.0}, "gpu": MODELS["resnet20"].default_rates["gpu"]} and "rates.json" in source
    (tmp_path / "bench" / "rates.json").write_text(json.dumps({"resnet20": {"cpu": {"rate": 3}}}))
    with pytest.raises(ConfigError, match="rates.json: not the rates `make bench` writes"):
        read_rates(str(tmp_path), "resnet20")


def tree(root: Path) -> list[str]:
    """Every path under ``root`` (symbolic links listed, not followed)."""
    out = []
    for folder, dirs, files in os.walk(root):
        out += [os.path.join(folder, n) for n in dirs + files]
    return sorted(out)


def _scratch_project(tmp_path: Path) -> Path:
    """A copy of the Makefile in a project folder of its own, the code linked, params/ its own."""
    proj = tmp_path / "proj"
    (proj / "params").mkdir(parents=True)
    shutil.copy(ROOT / "Makefile", proj / "Makefile")
    for name in ("lthlib", "notebooks", ".venv", "requirements.txt", "pyproject.toml"):
        (proj / name).symlink_to(ROOT / name)
    shutil.copytree(ROOT / "params" / "profiles", proj / "params" / "profiles")
    return proj


def test_clean_runs_refuses_anything_but_an_outputs_root_and_keeps_data(tmp_path):
    proj = _scratch_project(tmp_path)
    out = proj / "outputs"
    for f in ("demo/runs/r1/metrics.json", "demo/notebooks/a.ipynb", "demo/reports/analysis.html", "demo/plan.mk",
              "data/FashionMNIST/raw/x", "reports/index.html", "README.md", "results.csv"):
        (out / f).parent.mkdir(parents=True, exist_ok=True)
        (out / f).write_text("x")
    (proj / "lthlib_copy").mkdir()
    (proj / "lthlib_copy" / "code.py").write_text("x")
    everything = tree(tmp_path)
    for bad in ("", ".", "..", "/", "lthlib_copy", "params", "nowhere"):
        r = make("clean-runs", f"OUT={bad}", "CONFIRM=yes", cwd=proj)
        assert r.returncode != 0 and "error: OUT" in r.stderr, (bad, r.stderr)
        assert tree(tmp_path) == everything, bad
    r = make("clean-runs", "OUT=outputs", cwd=proj, timeout=30)  # no CONFIRM and no answer: nothing deleted
    assert r.returncode != 0 and "nothing deleted" in r.stdout and tree(tmp_path) == everything
    r = make("clean-runs", "OUT=outputs/", "CONFIRM=yes", cwd=proj)
    assert r.returncode == 0, r.stderr
    left = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    assert left == ["README.md", "data", "data/FashionMNIST", "data/FashionMNIST/raw", "data/FashionMNIST/raw/x"]
    assert (proj / "Makefile").exists() and (proj / "lthlib_copy" / "code.py").exists()
    r = make("clean", "OUT=", cwd=proj)
    assert r.returncode != 0 and "error: OUT is empty" in r.stderr


def test_make_n_reproduce_fmnist_lists_each_length_in_order_with_its_cost(tmp_path, fmnist_root):
    proj = _scratch_project(tmp_path)
    r = make("-n", "reproduce-fmnist", f"DATA={fmnist_root}", cwd=proj)
    assert r.returncode != 0 and "no params/fmnist_resnet20_*.yaml grid found" in r.stderr
    base = yaml.safe_load((ROOT / "params" / "cifar10_resnet20.yaml").read_text())
    grids = ["fmnist_resnet20_10ep", "fmnist_resnet20_40ep", "fmnist_resnet20_160ep", "fmnist_resnet20_40ep_fresh"]
    for g in grids[::-1]:
        epochs = int(re.search(r"_(\d+)ep", g).group(1))
        values = {**base, "name": g, "dataset": "fashion_mnist", "epochs": epochs, "sparsities": [0.59, 0.832],
                  "lrs": [0.1, 0.01], "settings": CLASSIC_SETTINGS}
        (proj / "params" / f"{g}.yaml").write_text(yaml.safe_dump(values))
    r = make("-n", "reproduce-fmnist", f"DATA={fmnist_root}", "OUT=out", cwd=proj)
    assert r.returncode == 0, r.stderr[-3000:]
    first = [r.stdout.find(f"out/{g}/notebooks/") for g in grids]
    assert all(i >= 0 for i in first) and first == sorted(first), first
    assert r.stdout.count("papermill") == 4 * (7 * 2 * 3 + 1)
    for g in grids:
        assert f"plan {g}: 42 notebooks" in r.stderr
    assert r.stderr.count("ticket-epochs") == 4 and r.stderr.count("on one GPU") == 4
    assert not list((proj / "out").glob("*/runs")) and not list((proj / "out").glob("*/notebooks/*.ipynb"))


@pytest.mark.slow
def test_make_grid_keeps_failures_aside_and_reexecutes_when_parameters_change(tmp_path, fmnist_root):
    base = ["grid", "GRID=demo", f"OUT={tmp_path}", "JOBS=1"]
    small = "n_train=200 n_test=100 seeds=[1] lrs=[0.0012345678] settings=[pretrain] eval_batch_size=100 notebooks=per_cell"
    r = make(*base, f"SET={small} epochs=1 dataset=cifar10 data_root={tmp_path}/missing download=false")
    assert r.returncode != 0
    nb = tmp_path / "demo" / "notebooks"
    target = nb / "pretrain_lr0.0012345678_s1.ipynb"
    failed = nb / "pretrain_lr0.0012345678_s1.failed.ipynb"
    assert not target.exists() and failed.exists() and "DatasetMissingError" in failed.read_text()
    assert not list(nb.glob("*.tmp.ipynb"))
    evil = "$(shell touch pwned) #x $HOME"
    ok = f'SET={small} data_root={fmnist_root} download=false description="{evil}"'
    r = make(*base, f"{ok} epochs=1")
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert target.exists() and not failed.exists() and not list(ROOT.glob("pwned"))
    assert (tmp_path / "demo" / "reports" / "analysis.html").exists()
    params = injected(target)
    assert params["lr"] == 0.0012345678 and params["overrides"]["description"] == evil
    finished = lambda: [p for p in (tmp_path / "demo" / "runs").iterdir() if (p / "metrics.json").exists()]
    [run] = finished()
    assert json.loads((run / "config.json").read_text())["identity"]["lr"] == 0.0012345678
    again = make(*base, f"{ok} epochs=1")
    assert again.returncode == 0 and "papermill" not in again.stdout  # nothing left to do
    changed = make(*base, f"{ok} epochs=2")  # a changed SET re-executes what it changes
    assert changed.returncode == 0, changed.stdout[-3000:] + changed.stderr[-3000:]
    assert "==> pretrain_lr0.0012345678_s1.ipynb" in changed.stdout and "==> analysis.ipynb" in changed.stdout
    assert injected(target)["overrides"]["epochs"] == 2
    assert len(finished()) == 2


@pytest.mark.slow
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


@pytest.mark.slow  # 80 s (make + papermill); tests/test_reliability.py renders a report through make in CI
def test_report_over_an_incomplete_grid_says_what_is_missing_and_trains_nothing(tmp_path, fmnist_root):
    sets = ["epochs=1", "n_train=200", "seeds=[1]", "lrs=[0.1]", "imp_rounds=2", "notebooks=per_cell",
            f"data_root={fmnist_root}",
            "download=false"]
    plan = plan_cli("params/demo.yaml", "--out-root", tmp_path, *sets)
    assert plan.returncode == 0, plan.stderr
    nb = tmp_path / "demo" / "notebooks" / "pretrain_lr0.1_s1.ipynb"
    r = make("-f", plan.stdout.strip(), f"OUT={tmp_path}", str(nb))
    assert r.returncode == 0, r.stderr[-2000:]
    r = make("report", f"OUT={tmp_path}")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    runs = [p.name for p in (tmp_path / "demo" / "runs").iterdir()]
    assert len(runs) == 1 and runs[0].startswith("pretrain-")  # the report trained nothing
    html = (tmp_path / "demo" / "reports" / "analysis.html").read_text()
    assert "no lt/rr pair finished yet" in html.lower()
    assert (tmp_path / "reports" / "index.html").exists()


def test_per_setting_notebooks_run_every_cell(tmp_path):
    """notebooks: per_setting (the demo) gives one notebook per setting, executed with lr and seed None (every
    cell of the grid), with the settings' dependencies between them."""
    plan = build("params/demo.yaml", {}, str(tmp_path))
    rules = dict(re.findall(r"^(\$\(OUT\)/\S+\.ipynb): (.*)$", plan.text, flags=re.M))
    nb = "$(OUT)/demo/notebooks"
    runs = sorted(t for t in rules if "/notebooks/" in t)
    assert runs == sorted(f"{nb}/{s}_all_cells.ipynb" for s in plan.exp.settings)
    assert f"{nb}/lt_imp_all_cells.ipynb" in rules[f"{nb}/rr_imp_all_cells.ipynb"]
    assert "pretrain" not in rules[f"{nb}/sdt_all_cells.ipynb"]  # SDT needs no dense run
    p = yaml.safe_load(plan.params["demo/notebooks/rr_omp_all_cells.params.yaml"])
    assert p["lr"] is None and p["seed"] is None and p["mask_from"] == "omp"
    assert plan.size["notebooks"] == len(plan.exp.settings) and plan.size["runs"] == 9 * 15


# ----------------------------------------------------------------------------- issue 23, item 9: what a plan needs
def _grid_file(tmp_path, text, name="grid.yaml"):
    p = tmp_path / name
    p.write_text("name: g\nmodel: resnet8_w8_s2\nepochs: 4\n" + text)
    return p


@pytest.mark.parametrize("text,sets,match", [
    ("sparsities: []\nsettings: [pretrain, lt_omp]\n", {}, r"grid\.yaml: key 'sparsities' is \[\], but settings "
     r"lt_omp train one run per sparsity: give at least one sparsity.*or leave lt_omp out of 'settings'"),
    ("imp_rounds: 0\nsparsities: [0.5]\n", {}, r"grid\.yaml: key 'imp_rounds' is 0, but settings lt_imp, rr_imp, "
     r"wr_imp train one run per IMP round: give at least one round"),
    ("sparsities: [0.5]\n", {"imp_rounds": 0}, r"grid\.yaml \(overrides\): key 'imp_rounds' is 0, but settings lt_imp"),
    ("imp_rounds: 0\nsettings: [sdt]\n", {}, r"grid\.yaml: key 'imp_rounds' is 0, but settings sdt \(needs "
     r"sparsities or imp_rounds\) train one run per IMP round"),
    ("settings: [pretrain, rr_omp, lt_omp, wr_omp]\n", {}, r"grid\.yaml: key 'sparsities' is \[\] \(its default: "
     r"not given\), but settings lt_omp, rr_omp, wr_omp train"),
    ("imp_rounds: 3\n", {}, r"key 'sparsities' is \[\] \(its default: not given\), but settings lt_omp, rr_omp, "
     r"oneshot_retrain, random_prune, wr_omp train"),
])
def test_a_grid_whose_settings_plan_no_run_is_refused_by_the_planner(tmp_path, text, sets, match):
    """Before: the plan was made and the notebook crashed with an unrelated pandas error."""
    with pytest.raises(ConfigError, match=match):
        build(str(_grid_file(tmp_path, text)), sets)


def test_the_planner_checks_every_setting_against_its_plans(tmp_path):
    """Each setting alone (with what it depends on): refused without sparsities or rounds exactly when its
    plans are then empty; weight rewinding in a one-epoch run (nothing to rewind to) stays allowed."""
    from lthlib import registry, settings as protocol
    from lthlib.params import load
    for s in registry.NAMES:
        base = load(None, model="resnet8_w8_s2", epochs=4, imp_rounds=2, sparsities=[0.5])
        need, todo = {s}, [s]
        while todo:
            need |= (new := set(protocol.depends(base, todo.pop())) - need)
            todo += new
        grid = [d for d in registry.NAMES if d in need]
        for key, empty in (("sparsities", []), ("imp_rounds", 0)):
            f = _grid_file(tmp_path, f"imp_rounds: 2\nsparsities: [0.5]\nsettings: [{', '.join(grid)}]\n")
            plans = protocol.plan(base.replace(**{key: empty}), s)
            if plans:
                build(str(f), {key: empty})
            else:
                with pytest.raises(ConfigError, match=re.escape(f"key {key!r} is {empty!r}, but settings") + f".*{s}"):
                    build(str(f), {key: empty})
    build(str(_grid_file(tmp_path, "imp_rounds: 2\nsparsities: [0.5]\nsettings: [pretrain, wr_imp]\n")),
          {"epochs": 1})


@pytest.mark.parametrize("value", [0, -5, "NaN", "inf", None, "abc"])
def test_a_zero_negative_or_non_numeric_bench_rate_names_the_file(tmp_path, value):
    (tmp_path / "bench").mkdir()
    path = tmp_path / "bench" / "rates.json"
    path.write_text(json.dumps({"resnet20": {"gpu": {"pack_rates": {"1": 100.0, "16": value}}}}))
    with pytest.raises(ConfigError, match=f"{path}: .*run `make bench` again or delete the file"):
        read_rates(str(tmp_path), "resnet20")
    if value == 0:  # the planner's command line (what make runs) says so and stops
        path.write_text(json.dumps({"resnet8_w8_s2": {"cpu": {"pack_rates": {"1": 0}}}}))
        r = plan_cli("params/demo.yaml", "--out-root", tmp_path, "--dry-run")
        assert r.returncode == 2 and r.stderr.startswith(f"error: {path}: ") and "Traceback" not in r.stderr, r.stderr
    path.write_text(json.dumps({"resnet20": {"gpu": {"pack_rates": {"0": 100.0}}}}))
    with pytest.raises(ConfigError, match="pack_rates 0: 100.0: a rate is a positive number"):
        read_rates(str(tmp_path), "resnet20")


def test_a_subset_of_the_grid_then_the_full_grid_redoes_nothing_for_the_subset(tmp_path):
    """README, "When a notebook is re-executed": the grid's shape is not in a per-cell notebook's parameters,
    so SET='seeds=[1]' then the full grid leaves seed 1's parameter files (make's prerequisites) as they
    were; a per-setting notebook, which runs every cell, gets new parameters and is re-executed."""
    cell = {"notebooks": "per_cell", "settings": ["pretrain", "lt_imp"]}
    out = str(tmp_path)                                   # not the checkout's outputs/: its runs change the plan
    one, full = build("params/demo.yaml", {**cell, "seeds": [1]}, out), build("params/demo.yaml", cell, out)
    s1 = {k: v for k, v in one.params.items() if "/notebooks/" in k}
    assert s1 and all(k.endswith("_s1.params.yaml") for k in s1)
    assert all(full.params[k] == v for k, v in s1.items())
    assert len(full.params) - 1 == 3 * len(s1)  # + seeds 2 and 3
    assert one.params["demo/reports/analysis.params.yaml"] != full.params["demo/reports/analysis.params.yaml"]
    every = {"settings": ["pretrain", "lt_imp"]}
    a, b = build("params/demo.yaml", {**every, "seeds": [1]}, out), build("params/demo.yaml", every, out)
    assert a.params["demo/notebooks/pretrain_all_cells.params.yaml"] != b.params["demo/notebooks/pretrain_all_cells.params.yaml"]


def test_the_lite_grid_fits_eight_minutes_of_one_gpu_as_grid_packs_by_the_plans_own_estimate():
    """Issue "The study, measured and published": the study-lite grid trains in at most 8 minutes of one
    GPU as grid packs, by the plan's estimate from the default (H100 CIFAR) rates, with the paper's
    definition intact: 3 seeds, 3 lrs with 0.01 and 0.1, IMP to 0.914, every condition's setting."""
    from lthlib import plan as P
    from lthlib.models import MODELS
    import lthlib
    exp = lthlib.load(ROOT / "params" / "lite_fmnist_resnet20.yaml", {"out_root": "outputs"})
    size = P.plan_size(exp, list(exp.settings))
    minutes = P.grid_pack_hours(exp, size, MODELS["resnet20"].default_rates) * 60
    assert 2 < minutes <= 8, minutes
    assert len(exp.seeds) == 3 and {0.01, 0.1} <= set(exp.lrs) and len(exp.lrs) >= 3
    assert round(1 - (1 - exp.imp_rate) ** exp.imp_rounds, 3) >= 0.914 and exp.model == "resnet20"
    assert {"pretrain", "lt_imp", "rr_imp", "lt_omp", "rr_omp", "sdt"} <= set(exp.settings)
    assert P.grid_pack_hours(exp.replace(pack="off"), size, MODELS["resnet20"].default_rates) is None
