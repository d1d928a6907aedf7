# Lottery-ticket sanity checks: the pipeline. `make help` lists the targets.
# Every unit of work is a file: an executed notebook per (setting, lr, seed) under
# $(OUT)/<grid>/notebooks/, written only on success. Finished runs are skipped, cut ones resume.
SHELL := /bin/bash
PROJECT := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
OUT ?= outputs
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
STAMP := $(VENV)/.installed
JOBS ?= 1
SET ?=
DATA ?=
NGPU ?=
LAUNCH ?=
DATADIR := $(or $(DATA),outputs/data)
SLURM_ARGS ?=
PACK ?=
# where each notebook job runs: here (default), on its own GPU slot (NGPU=N), or as a Slurm job
ifeq ($(LAUNCH),slurm)
LAUNCHER := $(PY) -m lthlib.launch --executor slurm --folder $(OUT)/slurm $(SLURM_ARGS) --
else ifeq ($(LAUNCH),submitit-local)
LAUNCHER := $(PY) -m lthlib.launch --executor local --folder $(OUT)/slurm --
else ifneq ($(NGPU),)
LAUNCHER := $(PY) -m lthlib.launch --gpu-slots $(NGPU) --lock-dir $(OUT)/.gpu-slots --
endif
# a value as one single-quoted shell word
shq = '$(subst ','\'',$(1))'
# SET reaches the planner as written: not expanded by make (no $(shell ...) runs), not by the shell
# ($HOME stays $HOME), split into key=value pairs like a shell line; its values go to the notebooks
# through YAML files, never into a Makefile. The sub-make gets SET= and DATA= so nothing expands them.
unexport SET DATA
export LTHLIB_SET = $(value SET)
# the plan for a grid: a generated Makefile with one target per executed notebook; prints its path
plan = $(PY) -m lthlib.plan params/$(1).yaml --out-root $(call shq,$(OUT)) $(2) \
  $(if $(DATA),$(call shq,data_root=$(DATA))) --set "$$LTHLIB_SET"
# run a grid: regenerate its plan (cheap), then make its targets with $(2) parallel jobs
# PACK=grid: first train every run of the grid in packs that span its cells (lthlib.schedule), then the
# notebooks execute, find their runs finished and tell the story
define run_grid
+@p=$$($(call plan,$(1),$(4))) && $(if $(filter grid,$(PACK)),$(PY) -m lthlib.schedule params/$(1).yaml \
  out_root=$(call shq,$(OUT)) $(if $(DATA),$(call shq,data_root=$(DATA))) --set "$$LTHLIB_SET" &&) $(MAKE) --no-print-directory -f $$p OUT=$(call shq,$(OUT)) VENV=$(VENV) \
  SET= DATA= "LAUNCHER=$(3)" -j$(2) all
endef
define newline


endef
# the Fashion-MNIST ResNet-20 study tier: the training-length axis in this order, then any other
# params/fmnist_resnet20_*.yaml
FMNIST_ORDER := fmnist_resnet20_10ep fmnist_resnet20_40ep fmnist_resnet20_160ep fmnist_resnet20_40ep_fresh
FMNIST_FOUND := $(basename $(notdir $(wildcard params/fmnist_resnet20_*.yaml)))
FMNIST_GRIDS := $(filter $(FMNIST_FOUND),$(FMNIST_ORDER)) $(sort $(filter-out $(FMNIST_ORDER),$(FMNIST_FOUND)))
# checks OUT before anything is deleted: set, a folder, neither the checkout nor a folder above it, and
# an outputs root (a grid folder with plan.mk or runs/ in it); sets $$res to its resolved path
define check_out
out=$(call shq,$(OUT)); \
[ -n "$$out" ] || { echo "error: OUT is empty: give the outputs folder, e.g. OUT=outputs" >&2; exit 2; }; \
[ -d "$$out" ] || { echo "error: OUT=$$out is not a folder: nothing to clean" >&2; exit 2; }; \
res=$$(cd "$$out" && pwd -P) || exit 2; \
for here in "$$(pwd -P)" "$$(cd $(call shq,$(PROJECT)) && pwd -P)"; do case "$$here/" in "$${res%/}/"*) \
  echo "error: OUT=$$out resolves to $$res, which holds $$here; give the outputs folder, e.g. OUT=outputs" >&2; \
  exit 2;; esac; done
endef
.PHONY: help setup demo report reproduce-cifar reproduce-cifar-78ep reproduce-cifar-models reproduce-cifar100 \
        reproduce-imagenet reproduce-fmnist grid report index check-report lab test test-slow bench clean clean-runs fashion-mnist

help:  ## list the targets
	@grep -E '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | expand -t 24
	@echo; echo "Variables: OUT=$(OUT) JOBS=$(JOBS) SET='key=value ...' (override a grid) DATA=/dataset/root"
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
FMNIST := $(DATADIR)/FashionMNIST/raw/t10k-labels-idx1-ubyte

fashion-mnist: $(FMNIST)  ## put real Fashion-MNIST under outputs/data (or DATA=): download, else Debian's package

$(FMNIST): | $(STAMP)
	@$(PY) -m lthlib.data prepare fashion_mnist $(DATADIR) 2>/dev/null || { \
	  echo "Fashion-MNIST: not on disk and no download; installing Debian's dataset-fashion-mnist"; \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
	    || { echo "error: apt-get failed: install dataset-fashion-mnist or put the IDX files in $(DATADIR)/FashionMNIST/raw" >&2; exit 1; }; \
	  $(PY) -m lthlib.data prepare fashion_mnist $(DATADIR); }

demo: $(STAMP) $(FMNIST)  ## the CPU default: every setting on Fashion-MNIST, 2 lrs x 2 seeds, + HTML report
	$(call run_grid,demo,2,$(LAUNCHER))
	@$(PY) -m lthlib.results index $(OUT)
	@echo "Report: $(OUT)/demo/reports/analysis.html   Index: $(OUT)/reports/index.html"

reproduce-cifar: $(STAMP)  ## CIFAR-10 ResNet-20 paper grid: 160 epochs, lr 0.1/0.01, 14 IMP rounds, OMP, RR
	$(call run_grid,cifar10_resnet20,$(or $(NGPU),$(JOBS)),$(LAUNCHER))
	@$(PY) -m lthlib.results index $(OUT)

reproduce-cifar-78ep: $(STAMP)  ## epoch ablation: the ResNet-20 grid with the 78-epoch schedule
	$(call run_grid,cifar10_resnet20_78ep,$(or $(NGPU),$(JOBS)),$(LAUNCHER))

reproduce-cifar-models: $(STAMP)  ## the other CIFAR-10 models: wide ResNet-32, VGG-16/19, MobileNet-v1
	$(call run_grid,cifar10_resnet32_wide,$(or $(NGPU),$(JOBS)),$(LAUNCHER))
	$(call run_grid,cifar10_vgg16,$(or $(NGPU),$(JOBS)),$(LAUNCHER))
	$(call run_grid,cifar10_vgg19,$(or $(NGPU),$(JOBS)),$(LAUNCHER))
	$(call run_grid,cifar10_mobilenet,$(or $(NGPU),$(JOBS)),$(LAUNCHER))

reproduce-cifar100: $(STAMP)  ## CIFAR-100: ResNet-20, wide ResNet-32, VGG-19
	$(call run_grid,cifar100_resnet20,$(or $(NGPU),$(JOBS)),$(LAUNCHER))
	$(call run_grid,cifar100_resnet32_wide,$(or $(NGPU),$(JOBS)),$(LAUNCHER))
	$(call run_grid,cifar100_vgg19,$(or $(NGPU),$(JOBS)),$(LAUNCHER))

reproduce-imagenet: $(STAMP)  ## ImageNet ResNet-50, torchrun on NGPU GPUs: make reproduce-imagenet DATA=/imagenet NGPU=8
	@test -n "$(DATA)" || { echo "error: DATA=/path/to/imagenet (with train/ and val/ ImageFolders) is required" >&2; exit 2; }
	$(call run_grid,imagenet_resnet50,1,$(if $(filter slurm submitit-local,$(LAUNCH)),$(LAUNCHER)),nproc=$(or $(NGPU),1))

reproduce-fmnist: $(STAMP) $(FMNIST)  ## study tier: ResNet-20 on full Fashion-MNIST at 10/40/160 epochs + fresh data order
	$(if $(strip $(FMNIST_GRIDS)),,$(error no params/fmnist_resnet20_*.yaml grid found: the study tier's grids live there))
	$(foreach g,$(FMNIST_GRIDS),$(call run_grid,$(g),$(or $(NGPU),$(JOBS)),$(LAUNCHER))$(newline))
	@$(PY) -m lthlib.results index $(OUT)

grid: $(STAMP)  ## any grid: make grid GRID=cifar10_vgg16 [JOBS=2] [SET='seeds=[1]'] [NGPU=4] [LAUNCH=slurm]
	@test -n "$(GRID)" || { echo "error: GRID=<name of a params/*.yaml file> is required" >&2; exit 2; }
	$(call run_grid,$(GRID),$(or $(NGPU),$(JOBS)),$(LAUNCHER))

report: $(STAMP)  ## re-render the analysis report of every grid under $(OUT) (never trains), then the index
	@for p in $(OUT)/*/plan.mk; do [ -e "$$p" ] || continue; \
	  $(MAKE) --no-print-directory -f $$p OUT=$(OUT) VENV=$(VENV) report-only || exit 1; done
	$(PY) -m lthlib.results index $(OUT)

index: $(STAMP)  ## rebuild $(OUT)/reports/index.html (links every report and executed notebook)
	$(PY) -m lthlib.results index $(OUT)

check-report: $(STAMP)  ## open every report page in headless Chromium, check console errors, save screenshots
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)
	@$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install -q playwright
	$(PY) scripts/check_report.py $(OUT)

lab: $(STAMP)  ## JupyterLab on the project kernel (notebooks/*.py open as notebooks via jupytext)
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=. $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

test: $(STAMP)  ## the test suite (CPU, < 10 min; slow tests excluded)
	$(PY) -m pytest -q

test-slow: $(STAMP)  ## the slow tests too
	$(PY) -m pytest -q -m ""

bench: $(STAMP)  ## throughput benchmark: official-style loop vs our engine (prints ratios)
	$(PY) bench/bench_training.py

clean:  ## remove temporary and derived files (converted notebooks, failed/tmp notebooks); keeps runs
	@[ -z $(call shq,$(OUT)) ] || [ -d $(call shq,$(OUT)) ] || exit 0; $(check_out); \
	rm -rf "$$res/.nbsrc"; \
	find "$$res" \( -name '*.tmp.ipynb' -o -name '*.failed.ipynb' -o -name '.*.tmp[0-9]*' \) -type f -delete

clean-runs:  ## delete every grid's runs, notebooks and reports under $(OUT) (asks first; CONFIRM=yes skips; data kept)
	@$(check_out); \
	grids=(); for g in "$$res"/*/; do g="$${g%/}"; [ -L "$$g" ] && continue; \
	  { [ -f "$$g/plan.mk" ] || [ -d "$$g/runs" ]; } && grids+=("$$g"); done; \
	[ $${#grids[@]} -gt 0 ] || { echo "error: OUT=$$out ($$res) holds no grid folder (<grid>/plan.mk or" \
	  "<grid>/runs/): not an outputs root, nothing deleted" >&2; exit 2; }; \
	echo "Grids under $$res: $${grids[*]##*/}"; \
	if [ "$(CONFIRM)" != yes ]; then read -p "Delete their runs, notebooks and reports (data kept)? [y/N] " a; \
	  [ "$$a" = y ] || { echo "nothing deleted"; exit 1; }; fi; \
	for g in "$${grids[@]}"; do rm -rf -- "$$g/runs" "$$g/notebooks" "$$g/reports" "$$g/plan.mk" "$$g/results.csv"; \
	  rmdir -- "$$g" 2>/dev/null || true; done; \
	rm -rf -- "$$res/reports" "$$res/results.csv" "$$res/.nbsrc"; \
	echo "deleted the runs, notebooks and reports of $${#grids[@]} grid(s) under $$res"
