# Lottery-ticket sanity checks: the pipeline. `make help` lists the targets.
# Every unit of work is a file: an executed notebook per (setting, lr, seed) under
# $OUT/<grid>/notebooks/, written only on success. Finished runs are skipped, cut ones resume.
SHELL := /bin/bash
PROJECT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
OUT ?= outputs
VENV ?= .venv
PYTHON ?= python3
JOBS ?=
SET ?=
DATA ?=
GRID ?=
NGPU ?=
LAUNCH ?=
SLURM_ARGS ?=
PACK ?=
CONFIRM ?=
# What a user sets reaches the recipes as written: make never expands it (no $(shell ...) runs, not even
# under make -n) and neither does the shell ($HOME stays $HOME, a ; runs nothing). Make reads these
# variables only with $(value ...), hands them to the recipes as LTHLIB_* environment variables, which the
# recipes check (check_root, check_jobs, check_grid) and quote ("$$LTHLIB_OUT"). None is exported under
# its own name, and no command-line variable reaches a sub-make unless it is passed by name
# (MAKEOVERRIDES). SET goes to the planner, which splits it into key=value pairs like a shell line; its
# values reach the notebooks through YAML files, never a Makefile.
AS_WRITTEN := SET OUT DATA GRID JOBS NGPU SLURM_ARGS CONFIRM
MAKEOVERRIDES :=
unexport $(AS_WRITTEN) VENV PYTHON PACK LAUNCH LAB_ARGS
export LTHLIB_SET = $(value SET)
export LTHLIB_OUT = $(value OUT)
export LTHLIB_DATA = $(value DATA)
export LTHLIB_GRID = $(value GRID)
export LTHLIB_JOBS = $(value JOBS)
export LTHLIB_NGPU = $(value NGPU)
export LTHLIB_SLURM_ARGS = $(value SLURM_ARGS)
export LTHLIB_CONFIRM = $(value CONFIRM)
# the variables make does expand (VENV, PYTHON, PACK, LAUNCH, LAB_ARGS and any other set on the command
# line): a '$' in one is refused before anything is expanded
$(foreach v,$(filter-out $(AS_WRITTEN),$(sort VENV PYTHON PACK LAUNCH LAB_ARGS $(foreach w,$(.VARIABLES),$(if \
  $(filter command,$(origin $(w))),$(w))))),$(if $(findstring $$,$(value $(v))),$(error $(v) holds a '$$': \
  make would expand it; give the value without make or shell syntax)))
ifneq ($(filter-out grid,$(value PACK)),)
$(error PACK=$(value PACK): accepted: PACK=grid (train the grid in packs spanning its cells first), or no PACK)
endif
ifneq ($(filter-out slurm submitit-local,$(value LAUNCH)),)
$(error LAUNCH=$(value LAUNCH): accepted: LAUNCH=slurm, LAUNCH=submitit-local, or no LAUNCH)
endif
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# make -n: list the work, write nothing (the plans run with --dry-run: they print, the sub-makes read stdin)
dry := $(findstring n,$(firstword -$(MAKEFLAGS)))
# where each notebook job runs: here (default), on its own GPU slot (NGPU=N), or as a Slurm job; the
# $$LTHLIB_* words are expanded by the shell of the recipe that passes LAUNCHER to the grid's plan
ifeq ($(value LAUNCH),slurm)
LAUNCHER := $(PY) -m lthlib.launch --executor slurm --folder $$LTHLIB_OUT/slurm $$LTHLIB_SLURM_ARGS --
else ifeq ($(value LAUNCH),submitit-local)
LAUNCHER := $(PY) -m lthlib.launch --executor local --folder $$LTHLIB_OUT/slurm --
else ifneq ($(value NGPU),)
LAUNCHER := $(PY) -m lthlib.launch --gpu-slots $$LTHLIB_NGPU --lock-dir $$LTHLIB_OUT/.gpu-slots --
endif
# a value as one single-quoted shell word
shq = '$(subst ','\'',$(1))'
# the output root of a target that writes: set, a plain path (make and the shell would read a space, $,
# ;, quotes and the like in it as syntax), neither / nor the checkout nor a folder above it; it need not
# exist yet. Sets $$out (as given) and $$res (resolved), and keeps the tools' state under it (keep_state).
define check_root
out="$$LTHLIB_OUT"; \
[ -n "$$out" ] || { echo "error: OUT is empty: give the outputs folder, e.g. OUT=outputs" >&2; exit 2; }; \
[[ "$$out" =~ ^[A-Za-z0-9._/+-]+$$ ]] || { echo "error: OUT='$$out': an outputs folder is a path of" \
  "letters, digits and . _ - + / only (make and the shell read a space, \$$, ;, quotes and the like as" \
  "syntax); e.g. OUT=outputs" >&2; exit 2; }; \
res=$$(realpath -m -- "$$out") || exit 2; \
[ ! -e "$$res" ] || [ -d "$$res" ] || { echo "error: OUT=$$out ($$res) is a file, not a folder" >&2; exit 2; }; \
$(refuse_holders); \
$(keep_state)
endef
# Nothing the project runs writes outside its output root: the per-user state of the tools a recipe runs
# (Jupyter's config, data -- nbsignatures.db, notebook_secret -- and runtime folders, IPython's profile
# and history, matplotlib's config and font cache, torch.compile's and Triton's caches (else in /tmp), the
# XDG cache and config of anything else: torch hub,
# pip, chromium) goes to $$res/.state/<tool>, not $HOME. Exported by the recipe's shell after check_root
# checked OUT (make neither sets nor expands them), so the grids' sub-makes and every notebook kernel
# inherit them. The targets that start kernels make $$res/.state first (make_state: IPython falls back to
# a fresh folder in /tmp when its folder's parent is missing); a dry run, or a refusal, makes nothing.
# The 'lthlib' kernel is installed with --sys-prefix (.venv/share/jupyter), which Jupyter searches
# whatever JUPYTER_DATA_DIR is. Targets without an output root keep their usual places: setup (pip and
# ipykernel install into .venv), test (tests/conftest.py gives each pytest-xdist worker its own state
# folders, and a make a test runs uses its own OUT's), bench (its own outputs/bench; torch only) and
# fashion-mnist (writes DATA; nothing under $HOME); lab is interactive use, where the user's own Jupyter
# and IPython configuration, kernels and history are what is wanted, so it is left alone there.
define keep_state
st="$$res/.state"; export JUPYTER_CONFIG_DIR="$$st/jupyter/config" JUPYTER_DATA_DIR="$$st/jupyter/data" \
  JUPYTER_RUNTIME_DIR="$$st/jupyter/runtime" IPYTHONDIR="$$st/ipython" MPLCONFIGDIR="$$st/matplotlib" \
  XDG_CACHE_HOME="$$st/cache" XDG_CONFIG_HOME="$$st/config" TORCHINDUCTOR_CACHE_DIR="$$st/torchinductor" \
  TRITON_CACHE_DIR="$$st/triton"
endef
make_state = mkdir -p -- "$$res/.state"
# checks OUT before anything is deleted: set, a folder, neither the checkout nor a folder above it; sets
# $$out and $$res (its resolved path)
define check_out
out="$$LTHLIB_OUT"; \
[ -n "$$out" ] || { echo "error: OUT is empty: give the outputs folder, e.g. OUT=outputs" >&2; exit 2; }; \
[ -d "$$out" ] || { echo "error: OUT=$$out is not a folder: nothing to clean" >&2; exit 2; }; \
res=$$(cd -- "$$out" && pwd -P) || exit 2; \
$(refuse_holders)
endef
define refuse_holders
for here in "$$(pwd -P)" "$$(cd $(call shq,$(PROJECT)) && pwd -P)"; do case "$$here/" in "$${res%/}/"*) \
  echo "error: OUT=$$out resolves to $$res, which is or holds $$here; give the outputs folder, e.g." \
  "OUT=outputs" >&2; exit 2;; esac; done
endef
# the grid folders of the outputs root $$res (a folder with plan.mk or runs/ in it; links skipped): $$grids
define find_grids
grids=(); for g in "$$res"/*/; do g="$${g%/}"; [ -L "$$g" ] && continue; \
  { [ -f "$$g/plan.mk" ] || [ -d "$$g/runs" ]; } && grids+=("$$g"); done
endef
# JOBS and NGPU are positive whole numbers (either may be left out); SLURM_ARGS are sbatch options, no commands
define check_jobs
[[ "$$LTHLIB_JOBS" =~ ^([1-9][0-9]*)?$$ ]] || { echo "error: JOBS='$$LTHLIB_JOBS': give a positive whole" \
  "number of notebooks to run at once, e.g. JOBS=2" >&2; exit 2; }; \
[[ "$$LTHLIB_NGPU" =~ ^([1-9][0-9]*)?$$ ]] || { echo "error: NGPU='$$LTHLIB_NGPU': give a positive whole" \
  "number of GPUs, e.g. NGPU=4, or leave NGPU out" >&2; exit 2; }; \
case "$$LTHLIB_SLURM_ARGS" in *[\;\&\|\<\>\`\(\)\{\}]*|*$$'\n'*) echo "error: SLURM_ARGS='$$LTHLIB_SLURM_ARGS':" \
  "give sbatch options only (e.g. SLURM_ARGS='--partition gpu --gpus 1'), no shell syntax" >&2; exit 2;; esac
endef
# $$g, the grid's params name, is a plain name (GRID=...)
define check_grid
[ -n "$$g" ] || { echo "error: GRID=<name of a params/*.yaml file> is required, e.g. GRID=cifar10_vgg16" >&2; \
  exit 2; }; \
[[ "$$g" =~ ^[A-Za-z0-9_-][A-Za-z0-9_.-]*$$ ]] || { echo "error: GRID='$$g': give the name of a" \
  "params/*.yaml file without .yaml, e.g. GRID=cifar10_vgg16 (letters, digits, _ - and ., not starting" \
  "with a dot)" >&2; exit 2; }
endef
data_arg = $${LTHLIB_DATA:+"data_root=$$LTHLIB_DATA"}
# the plan for grid $$g: a generated Makefile with one target per executed notebook; prints its path
plan = $(PY) -m lthlib.plan "params/$$g.yaml" --out-root "$$out" $(1) $(data_arg) --set "$$LTHLIB_SET"
# where PACK=grid trains a grid's waves: as Slurm jobs, as local submitit processes, on NGPU GPUs, or here
ifeq ($(value LAUNCH),slurm)
schedule_where := --executor slurm --folder "$$out/slurm" $$LTHLIB_SLURM_ARGS
else ifeq ($(value LAUNCH),submitit-local)
schedule_where := --executor local --folder "$$out/slurm"
else
schedule_where := $${LTHLIB_NGPU:+--ngpu "$$LTHLIB_NGPU"}
endif
schedule = $(PY) -m lthlib.schedule "params/$$g.yaml" "out_root=$$out" $(data_arg) --set "$$LTHLIB_SET" \
  $(schedule_where)
# after a failed grid or report whose analysis notebook failed after the last rendered report (its
# tables and figures are then newer than analysis.html): the report page is replaced by one that says
# so (lthlib.report failed); $$p is the grid's plan.mk
define withdraw_report
r="$${p%/plan.mk}/reports"; if [ -n "$$p" ] && [ -f "$$r/analysis.failed.ipynb" ] && \
  [ "$$r/analysis.failed.ipynb" -nt "$$r/analysis.html" ]; then \
  $(PY) -m lthlib.report failed "$$r/analysis.failed.ipynb" "$$r/analysis.html" >&2; fi
endef
# run a grid: $(1) its params name (or $$LTHLIB_GRID), $(2) how many notebooks at once (a shell word),
# $(3) the launcher, $(4) more plan arguments, $(5) the plan's targets (default all: its notebooks, then its
# report; runs or report alone), $(6) non-empty: pack by grid (PACK=grid) always. Check the variables, regenerate its plan (cheap), then make its targets.
# PACK=grid: first train every run of the grid in packs that span its cells (lthlib.schedule), then the
# notebooks execute, find their runs finished and tell the story. Under make -n the plan is printed, not
# written (lthlib.plan --dry-run), and the sub-make reads it from stdin: a dry run writes nothing.
define run_grid
+@$(check_root); $(check_jobs); g=$(1); $(check_grid); jobs=$(2); \
$(if $(dry),mk=$$($(call plan,$(4)) --dry-run) && $(if $(call packs,$(5),$(6)),echo $(schedule) &&) \
  printf '%s\n' "$$mk" | $(MAKE) --no-print-directory -f - $(call sub_make,$(3),$(5)), \
p=$$($(call plan,$(4))) && $(make_state) && $(if $(call packs,$(5),$(6)),$(schedule) &&) \
  $(MAKE) --no-print-directory -f "$$p" $(call sub_make,$(3),$(5)) || { $(withdraw_report); exit 1; })
endef
# a grid's sub-make: its variables, how many notebooks at once -- the job slots of make -jN when make runs
# with one (the sub-make joins its jobserver; a -j of its own would run it apart), else $$jobs -- and targets
sub_make = "OUT=$$out" "VENV=$(VENV)" "LAUNCHER=$(1)" $(if $(findstring --jobserver,$(MAKEFLAGS)),,-j"$$jobs") \
  $(or $(2),all)
# PACK=grid (or a target that always packs by grid: $(2) non-empty) trains the grid's runs first, unless only
# its report is made
packs = $(and $(or $(filter grid,$(value PACK)),$(2)),$(filter-out report,$(or $(1),all)))
grid_jobs := $${LTHLIB_NGPU:-$${LTHLIB_JOBS:-1}}
define newline


endef
# the Fashion-MNIST ResNet-20 study tier: the training-length axis in this order, then any other
# params/fmnist_resnet20_*.yaml
FMNIST_ORDER := fmnist_resnet20_10ep fmnist_resnet20_40ep fmnist_resnet20_160ep fmnist_resnet20_40ep_fresh
FMNIST_FOUND := $(basename $(notdir $(wildcard params/fmnist_resnet20_*.yaml)))
FMNIST_GRIDS := $(filter $(FMNIST_FOUND),$(FMNIST_ORDER)) $(sort $(filter-out $(FMNIST_ORDER),$(FMNIST_FOUND)))
.PHONY: help setup demo report reproduce-lite params-doc readme-results reproduce-cifar reproduce-cifar-78ep reproduce-cifar-models reproduce-cifar100 \
        reproduce-imagenet reproduce-fmnist grid report index check-report lab test test-slow bench clean clean-runs fashion-mnist

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 24
	@echo; echo "Variables: OUT=$$LTHLIB_OUT JOBS=N (default 1, the demo 2; make -jN shares N slots instead) SET='key=value ...' (override a grid) DATA=/dataset/root"
	@echo "           NGPU=N (one GPU per notebook job; ImageNet: torchrun on N GPUs) LAUNCH=slurm|submitit-local SLURM_ARGS='--partition p --gpus 1'"

setup: $(STAMP)  ## create .venv from requirements.txt and register the 'lthlib' Jupyter kernel

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	$(PY) -m ipykernel install --sys-prefix --name lthlib --display-name "Python (lthlib)" >/dev/null
	touch $@

# the last of the four IDX files written: its presence means the dataset is on disk (no work at start-up)
fashion-mnist: | $(STAMP)  ## put real Fashion-MNIST under outputs/data (or DATA=): download, else Debian's package
	@dir="$${LTHLIB_DATA:-outputs/data}"; [ -e "$$dir/FashionMNIST/raw/t10k-labels-idx1-ubyte" ] || { \
	  $(PY) -m lthlib.data prepare fashion_mnist "$$dir" 2>/dev/null || { \
	  echo "Fashion-MNIST: not on disk and no download; installing Debian's dataset-fashion-mnist"; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	    || { echo "error: apt-get failed: install dataset-fashion-mnist or put the IDX files in $$dir/FashionMNIST/raw" >&2; exit 1; }; \
	  $(PY) -m lthlib.data prepare fashion_mnist "$$dir"; }; }

demo: $(STAMP) fashion-mnist  ## the CPU default: the settings of the paper's definition on Fashion-MNIST, 3 lrs x 3 seeds, + report
	$(call run_grid,demo,$${LTHLIB_JOBS:-2},$(LAUNCHER))
	@$(check_root); $(PY) -m lthlib.results index "$$out"
	@echo "Report: $$LTHLIB_OUT/demo/reports/analysis.html   Index: $$LTHLIB_OUT/reports/index.html"

reproduce-cifar: $(STAMP)  ## CIFAR-10 ResNet-20 paper grid: 160 epochs, lr 0.1/0.01, 14 IMP rounds, OMP, RR
	$(call run_grid,cifar10_resnet20,$(grid_jobs),$(LAUNCHER))
	@$(check_root); $(PY) -m lthlib.results index "$$out"

reproduce-cifar-78ep: $(STAMP)  ## epoch ablation: the ResNet-20 grid with the 78-epoch schedule
	$(call run_grid,cifar10_resnet20_78ep,$(grid_jobs),$(LAUNCHER))

reproduce-cifar-models: $(STAMP)  ## the other CIFAR-10 models: wide ResNet-32, VGG-16/19, MobileNet-v1
	$(call run_grid,cifar10_resnet32_wide,$(grid_jobs),$(LAUNCHER))
	$(call run_grid,cifar10_vgg16,$(grid_jobs),$(LAUNCHER))
	$(call run_grid,cifar10_vgg19,$(grid_jobs),$(LAUNCHER))
	$(call run_grid,cifar10_mobilenet,$(grid_jobs),$(LAUNCHER))

reproduce-cifar100: $(STAMP)  ## CIFAR-100: ResNet-20, wide ResNet-32, VGG-19
	$(call run_grid,cifar100_resnet20,$(grid_jobs),$(LAUNCHER))
	$(call run_grid,cifar100_resnet32_wide,$(grid_jobs),$(LAUNCHER))
	$(call run_grid,cifar100_vgg19,$(grid_jobs),$(LAUNCHER))

reproduce-imagenet: $(STAMP)  ## ImageNet ResNet-50, torchrun on NGPU GPUs: make reproduce-imagenet DATA=/imagenet NGPU=8
	+@[ -n "$$LTHLIB_DATA" ] || { echo "error: DATA=/path/to/imagenet (with train/ and val/ ImageFolders) is required" >&2; exit 2; }
	$(call run_grid,imagenet_resnet50,1,$(if $(filter slurm submitit-local,$(value LAUNCH)),$(LAUNCHER)),nproc=$${LTHLIB_NGPU:-1})

# every grid's runs first, then every report: each report pools the other lengths' runs (make -n lists each
# grid's work in one pass)
# the lite study: packs across cells (PACK=grid) always; on a machine without a CUDA GPU it prints the
# planner's estimate and asks first (CONFIRM=yes skips)
reproduce-lite: $(STAMP) fashion-mnist  ## lite study: ResNet-20 on 6k Fashion-MNIST, 10 epochs, 3 lrs x 3 seeds, every condition (GPU: minutes)
	@$(check_root); $(PY) -c "import torch, sys; sys.exit(not torch.cuda.is_available())" && exit 0; \
	$(PY) -m lthlib.plan params/lite_fmnist_resnet20.yaml --out-root "$$out" $(data_arg) --dry-run >/dev/null \
	  || exit 2; echo "No CUDA GPU here: the lite study trains on this CPU for the time estimated above." >&2; \
	[ "$$LTHLIB_CONFIRM" = yes ] && exit 0; [ -t 0 ] || { echo "error: run it on a GPU machine, or give" \
	  "CONFIRM=yes to train on this CPU anyway" >&2; exit 2; }; read -p "Train it here anyway? [y/N] " a; \
	[ "$$a" = y ] || { echo "nothing run" >&2; exit 1; }
	$(call run_grid,lite_fmnist_resnet20,$(grid_jobs),$(LAUNCHER),,,grid)
	@$(check_root); $(PY) -m lthlib.results index "$$out"
	@echo "Report: $$LTHLIB_OUT/lite_fmnist_resnet20/reports/analysis.html   Index: $$LTHLIB_OUT/reports/index.html"

reproduce-fmnist: $(STAMP) fashion-mnist  ## study tier: ResNet-20 on full Fashion-MNIST at 10/40/160 epochs + fresh data order
	$(if $(strip $(FMNIST_GRIDS)),,$(error no params/fmnist_resnet20_*.yaml grid found: the study tier's grids live there))
	$(foreach g,$(FMNIST_GRIDS),$(call run_grid,$(g),$(grid_jobs),$(LAUNCHER),,$(if $(dry),all,runs))$(newline))
	$(if $(dry),,$(foreach g,$(FMNIST_GRIDS),$(call run_grid,$(g),$(grid_jobs),$(LAUNCHER),,report)$(newline)))
	@$(check_root); $(PY) -m lthlib.results index "$$out"

grid: $(STAMP)  ## any grid: make grid GRID=cifar10_vgg16 [JOBS=2] [SET='seeds=[1]'] [NGPU=4] [LAUNCH=slurm]
	$(call run_grid,$$LTHLIB_GRID,$(grid_jobs),$(LAUNCHER))

# every grid's report, from OUT's own runs into OUT (each analysis.params.yaml is pointed at OUT first, so
# a copied outputs root never writes into the one it was copied from); SET= is refused, not ignored
report: $(STAMP)  ## re-render the analysis report of every grid under OUT (never trains), then the index
	+@$(check_root); \
	[ -z "$$LTHLIB_SET" ] || { echo "error: make report re-renders each grid's report with the parameters of" \
	  "its plan and takes no SET=; give SET= to the grid's own target (make grid GRID=<name> SET='...')," \
	  "which renders its report too" >&2; exit 2; }; \
	[ -d "$$res" ] || { echo "error: OUT=$$out: no such folder; give the outputs root that holds the grids" >&2; \
	  exit 2; }; \
	$(if $(dry),,$(make_state) || exit 2;) \
	for p in "$$out"/*/plan.mk; do [ -e "$$p" ] || continue; a="$${p%/plan.mk}/reports/analysis.params.yaml"; \
	  $(if $(dry),echo "point $$a at OUT=$$out",$(PY) -m lthlib.report retarget "$$a" "$$out") || exit 1; \
	  $(MAKE) --no-print-directory -f "$$p" "OUT=$$out" "VENV=$(VENV)" report-only || { $(withdraw_report); \
	  exit 1; }; done; \
	$(if $(dry),echo) $(PY) -m lthlib.results index "$$out"

params-doc: $(STAMP)  ## the parameter reference (every key: type, default, bounds, doc) as OUT/reports/params.html
	@$(check_root); $(PY) -m lthlib.cli params-doc --html "$$out/reports/params.html"

readme-results: $(STAMP)  ## after make demo: copy its results and verdicts to results/demo/ and redo README's block
	@$(check_root); $(PY) -m lthlib.readme publish demo --out "$$out"

index: $(STAMP)  ## rebuild OUT/reports/index.html (links every report and executed notebook)
	@$(check_root); $(PY) -m lthlib.results index "$$out"

check-report: $(STAMP)  ## open every report page in headless Chromium, check console errors, save screenshots
	@$(check_root)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@$(check_root); $(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q playwright
	@$(check_root); $(PY) scripts/check_report.py "$$out"

lab: $(STAMP)  ## JupyterLab on the project kernel (notebooks/*.py open as notebooks via jupytext)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# pytest-xdist processes (the tests are mostly 1-thread subprocesses: 2 on 2 cores ran the suite 1.8x faster)
TEST_WORKERS ?= 2
test: $(STAMP)  ## the test suite (CPU, < 10 min; slow tests excluded; TEST_WORKERS=N processes, default 2)
	$(PY) -m pytest -q -n $(TEST_WORKERS)

test-slow: $(STAMP)  ## the slow tests too
	$(PY) -m pytest -q -n $(TEST_WORKERS) -m ""

bench: $(STAMP)  ## throughput benchmark: official-style loop vs our engine (prints ratios)
	$(PY) bench/bench_training.py

# an OUT that is not an outputs root: nothing to do for the default outputs/, an error for one given
clean_not_a_root = $(if $(filter file,$(origin OUT)),echo "nothing to clean: $$res holds no grid folder"; exit 0,echo \
  "error: OUT=$$out ($$res) holds no grid folder (<grid>/plan.mk or <grid>/runs/): not an outputs root;" \
  "nothing cleaned" >&2; exit 2)

clean:  ## remove temporary and derived files (converted notebooks, failed/tmp notebooks) of an outputs root; keeps runs
	@out="$$LTHLIB_OUT"; [ -z "$$out" ] || [ -d "$$out" ] || exit 0; $(check_out); $(find_grids); \
	[ $${#grids[@]} -gt 0 ] || { $(clean_not_a_root); }; \
	rm -rf -- "$$res/.nbsrc" "$$res/.state"; \
	find "$$res" \( -name '*.tmp.ipynb' -o -name '*.failed.ipynb' -o -name '.*.tmp[0-9]*' \) -type f -delete

clean-runs:  ## delete every grid's runs, notebooks and reports under OUT (asks first; CONFIRM=yes skips; data kept)
	@$(check_out); $(find_grids); \
	[ $${#grids[@]} -gt 0 ] || { echo "error: OUT=$$out ($$res) holds no grid folder (<grid>/plan.mk or" \
	  "<grid>/runs/): not an outputs root, nothing deleted" >&2; exit 2; }; \
	echo "Grids under $$res: $${grids[*]##*/}"; \
	if [ "$$LTHLIB_CONFIRM" != yes ]; then read -p "Delete their runs, notebooks and reports (data kept)? [y/N] " a; \
	  [ "$$a" = y ] || { echo "nothing deleted"; exit 1; }; fi; \
	for g in "$${grids[@]}"; do rm -rf -- "$$g/runs" "$$g/notebooks" "$$g/reports" "$$g/plan.mk" "$$g/results.csv"; \
	  rmdir -- "$$g" 2>/dev/null || true; done; \
	rm -rf -- "$$res/reports" "$$res/results.csv" "$$res/.nbsrc"; \
	echo "deleted the runs, notebooks and reports of $${#grids[@]} grid(s) under $$res"
