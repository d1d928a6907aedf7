#!/usr/bin/env bash
# The device checks of one session on a lent GPU (no papermill there: lthlib is called directly).
# Usage (device tool): CHECKS="capture bench grid" bash scripts/gpu_check.sh   with .gpudata/ (Debian's
# Fashion-MNIST .gz files) carried. Writes logs (and the study tarball, with CHECKS=study) to $OUT.
#   capture  the captured step (cuda_graph) against the eager step on CUDA (tests/test_capture.py)
#   bench    pack rates per step variant, the kernel profile of a pack of 64, the whole-grid estimates
#   grid     a tiny Fashion-MNIST ResNet-20 grid through the scheduler with cuda_graph: true
#   det      CUDA determinism: two identical dense runs each way, and what deterministic costs
#   study    the study tier's shortest length through the grid scheduler
#   lite     the study-lite grid (params/lite_fmnist_resnet20.yaml, `make reproduce-lite`) through the grid
#            scheduler, then `python -m lthlib.transfer pack` writes its runs' results, provenance.json and
#            the weights the report reads to $OUT (<= 56 MiB in parts of 15 MiB; the results archive first,
#            so a pack cut short still brings back every finished run's results). Timed against a deadline
#            of LITE_DEADLINE seconds (570) from this script's start, inside the device's 600 s: the
#            scheduler gets what is left of it less LITE_PACK_RESERVE seconds (30) for the pack (LITE_LIMIT
#            seconds instead, when given), the pack what is left of the deadline (at least 25 s); lite.log
#            says the limits chosen. If the scheduler fails (an exit status other than 0 and 124) before
#            any run finished -- CUDA graph capture failing, say -- its log is kept as lite1.log and the
#            grid is trained once more with cuda_graph=false in the time left (at least 60 s), and packed
#            with that set. At most 8 files come back: gpu.txt, lite.log, lite1.log, the results archive
#            and 4 weight parts. Fashion-MNIST must be on the machine (Debian's dataset-fashion-mnist) or
#            carried in .gpudata/; else the script stops at once (a download would hang offline).
#            LITE_SET: key=value overrides, split at spaces, never globbed ('seeds=[1,2]' stays itself).
#            Run it alone, with the revision named (the copy there has no .git):
#              CHECKS=lite LTHLIB_CODE_VERSION=$(git describe --always --dirty) bash scripts/gpu_check.sh
#            then here: python -m lthlib.transfer unpack <fetched folder> --out outputs-lite;
#            make report OUT=outputs-lite; python -m lthlib.readme publish lite_fmnist_resnet20 --out
#            outputs-lite --report
set -u
T0=$(date +%s)   # the deadlines (lite) count from here
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
CHECKS=${CHECKS:-"capture bench grid"}
has() { [[ " $CHECKS " == *" $1 "* ]]; }
spent() { echo $(( $(date +%s) - T0 )); }
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
FMNIST=${FMNIST_DEBIAN:-/usr/share/datasets/fashion-mnist}   # Debian's dataset-fashion-mnist
FMNIST_FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
has_fmnist() { local f; for f in $FMNIST_FILES; do [ -s "$1/$f$2" ] || return 1; done; }
if ! has_fmnist "$FMNIST" .gz && ! has_fmnist outputs/data/FashionMNIST/raw ""; then
  if has_fmnist .gpudata .gz; then   # Debian's place, else straight where lthlib.data reads it (data_root outputs/data)
    { mkdir -p "$FMNIST" && cp .gpudata/*.gz "$FMNIST/"; } 2>/dev/null || {
      mkdir -p outputs/data/FashionMNIST/raw
      for f in $FMNIST_FILES; do gunzip -c ".gpudata/$f.gz" > "outputs/data/FashionMNIST/raw/.$f.tmp" &&
        mv "outputs/data/FashionMNIST/raw/.$f.tmp" "outputs/data/FashionMNIST/raw/$f"; done; }
  else
    echo "error: Fashion-MNIST is neither in $FMNIST nor in .gpudata/ (the four *-ubyte.gz files of Debian's" \
      "dataset-fashion-mnist): carry .gpudata (mkdir -p .gpudata && cp $FMNIST/*.gz .gpudata/ here); a download" \
      "would hang, the machine is offline" | tee -a "$OUT/gpu.txt" >&2
    exit 2
  fi
fi
timeout -k 5 60 python3 -m lthlib.data prepare fashion_mnist outputs/data 2>&1 | tail -1 | tee -a "$OUT/gpu.txt"
prep=${PIPESTATUS[0]}
if [ "$prep" != 0 ]; then
  echo "error: preparing Fashion-MNIST failed (status $prep; 124: over 60 s)" | tee -a "$OUT/gpu.txt" >&2
  exit 2
fi

if has capture; then  # pytest may be missing there: a stand-in for the decorators the test module uses
timeout 120 python3 - <<'PY' 2>&1 | tee "$OUT/capture.txt"
import sys, time, types
try:
    import pytest  # noqa: F401
except ImportError:
    ident = lambda *a, **k: (lambda f: f)
    sys.modules["pytest"] = types.SimpleNamespace(mark=types.SimpleNamespace(parametrize=ident, skipif=ident, slow=ident),
                                                  raises=None)
sys.path.insert(0, ".")
import tests.test_capture as t
t0 = time.time()
import torch
dev = "cuda" if torch.cuda.is_available() else "cpu"  # cpu: a dry run of this script (the body, no graph)
steps = []
eager, graph = t._tiny_training(dev, False, epochs=3), t._tiny_training(dev, True, steps, epochs=3)
assert dev == "cpu" or steps[0].graph is not None, "no graph was captured"
diff = max(float((eager[1][k] - graph[1][k]).abs().max()) for k in eager[1] if eager[1][k].is_floating_point())
eager2 = t._tiny_training(dev, False, epochs=3)
noise = max(float((eager[1][k] - eager2[1][k]).abs().max()) for k in eager[1] if eager[1][k].is_floating_point())
t._assert_same_training(eager, graph, 1e-3)
print(f"capture on {dev}: graph vs eager max weight diff {diff:.3g} (eager vs eager {noise:.3g}); OK in {time.time() - t0:.0f}s")
PY
fi

if has bench; then
read -ra BENCH_WORDS <<< "${BENCH_ARGS:-"--images resnet20=5000 --pack-sizes 1,6,12,22,32,64 --profile 64"}"
timeout "${BENCH_LIMIT:-330}" python3 bench/bench_training.py --models resnet20 --tickets 4 "${BENCH_WORDS[@]}" \
  --variants "${VARIANTS:-eager,graph,sub1x1+graph,s2d+graph,bf16+graph,compile+graph:6/22/64}" 2>&1 | tee "$OUT/bench.txt" | grep -v Warning
cp outputs/bench/rates.json "$OUT/" 2>/dev/null
fi

if has grid; then
t0=$(date +%s)
read -ra GRID_WORDS <<< "${GRID_SET:-n_train=3000 epochs=2}"
timeout 90 python3 -m lthlib.schedule params/fmnist_resnet20_10ep.yaml "${GRID_WORDS[@]}" \
  eval_every=1 'seeds=[1,2]' imp_rounds=2 'sparsities=[0.59]' cuda_graph=true out_root=/tmp/gridcheck > "$OUT/grid.log" 2>&1
echo "grid rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/grid.log"
grep -E "step|error|Error" "$OUT/grid.log" | tail -12
fi

if has det; then
python3 - <<'PY' 2>&1 | tee "$OUT/determinism.txt"
import lthlib
res = {}
for det in (False, True):
    accs, walls = [], []
    for rep in (1, 2):
        exp = lthlib.load("params/fmnist_resnet20_10ep.yaml", {"out_root": f"/tmp/det{int(det)}_{rep}",
              "n_train": 10000, "epochs": 3, "deterministic": det, "pack": "off"}, lr=0.1, seed=1)
        m = lthlib.pretrain(exp).read_metrics()
        accs.append(m["final_test_acc"]); walls.append(m["wall_time_s"])
    res[det] = (accs, walls)
    print(f"deterministic={det}: final acc {accs}, identical={accs[0] == accs[1]}, wall {walls}")
print(f"deterministic costs x{sum(res[True][1]) / sum(res[False][1]):.2f} wall time")
PY
fi

if has study; then
t0=$(date +%s)
read -ra STUDY_WORDS <<< "${STUDY_SET:-n_train=5000 eval_every=5 pack=on pack_size=32}"
timeout "${STUDY_LIMIT:-300}" python3 -m lthlib.schedule params/fmnist_resnet20_10ep.yaml \
  "${STUDY_WORDS[@]}" out_root=outputs > "$OUT/study.log" 2>&1
echo "study rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/study.log"
tar czf "$OUT/study_runs.tgz" --exclude=checkpoint.pt --exclude=mask.pt --exclude=.lock \
  --exclude='*/runs/[!p]*/final.pt' --exclude='*/runs/[!p]*/init.pt' outputs/fmnist_resnet20_10ep
fi

if has lite; then
read -ra LITE_WORDS <<< "${LITE_SET:-}"   # split at spaces, never globbed
LITE_DEADLINE=${LITE_DEADLINE:-570}; LITE_PACK_RESERVE=${LITE_PACK_RESERVE:-30}
LITE_PARAMS=params/lite_fmnist_resnet20.yaml
left() { echo $(( LITE_DEADLINE - $(spent) - LITE_PACK_RESERVE )); }   # the scheduler's share of the deadline
lite_schedule() {  # lite_schedule LOG LIMIT [key=value ...]: one try of the grid; sets rc and wall
  local log=$1 limit=$2 t0; shift 2
  t0=$(date +%s)
  if [ "$limit" -lt 1 ]; then
    echo "lite: no time left for the scheduler (limit ${limit}s after $(spent)s): not run" | tee -a "$log"
    rc=124; wall=0; return
  fi
  timeout -k 10 "$limit" python3 -m lthlib.schedule "$LITE_PARAMS" ${LITE_WORDS[@]+"${LITE_WORDS[@]}"} "$@" \
    out_root=outputs >> "$log" 2>&1
  rc=$?; wall=$(( $(date +%s) - t0 ))
}
if [ -n "${LITE_LIMIT:-}" ]; then limit=$LITE_LIMIT; why="LITE_LIMIT"
else limit=$(left); why="LITE_DEADLINE ${LITE_DEADLINE}s from the script's start - $(spent)s spent - LITE_PACK_RESERVE ${LITE_PACK_RESERVE}s"; fi
echo "lite: scheduler limit ${limit}s ($why)" | tee "$OUT/lite.log"
marker=$(mktemp); extra=()
lite_schedule "$OUT/lite.log" "$limit"
finished=$(find outputs -mindepth 4 -maxdepth 4 -path 'outputs/*/runs/*/metrics.json' -newer "$marker" 2>/dev/null | head -1)
retry=$(left); [ -n "${LITE_LIMIT:-}" ] && [ "$LITE_LIMIT" -lt "$retry" ] && retry=$LITE_LIMIT
if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$wall" -lt "$limit" ] && [ -z "$finished" ]; then   # not a timeout
  echo "lite rc=$rc wall=${wall}s with no run finished: kept as lite1.log; once more with cuda_graph=false" \
    "(limit ${retry}s)" | tee -a "$OUT/lite.log"
  grep -E "error|Error" "$OUT/lite.log" | tail -4
  mv "$OUT/lite.log" "$OUT/lite1.log"
  if [ "$retry" -ge 60 ]; then
    extra=(cuda_graph=false)
    echo "lite: second try, cuda_graph=false, scheduler limit ${retry}s (what is left of LITE_DEADLINE" \
      "${LITE_DEADLINE}s after $(spent)s, less LITE_PACK_RESERVE ${LITE_PACK_RESERVE}s)" | tee "$OUT/lite.log"
    lite_schedule "$OUT/lite.log" "$retry" "${extra[@]}"
  else
    echo "lite: no second try: ${retry}s left (under 60 s)" | tee "$OUT/lite.log"
  fi
fi
rm -f "$marker"
echo "lite rc=$rc wall=${wall}s code=${LTHLIB_CODE_VERSION:-unknown} ${extra[*]:-}" | tee -a "$OUT/lite.log"
grep -E "step .*done|error|Error|trained in packs" "$OUT/lite.log" | tail -6
pack_limit=$(( LITE_DEADLINE - $(spent) )); [ "$pack_limit" -lt 25 ] && pack_limit=25
echo "lite: pack limit ${pack_limit}s (what is left of LITE_DEADLINE ${LITE_DEADLINE}s after $(spent)s; at least 25 s)" \
  | tee -a "$OUT/lite.log"
timeout -k 5 "$pack_limit" python3 -m lthlib.transfer pack "$LITE_PARAMS" ${LITE_WORDS[@]+"${LITE_WORDS[@]}"} \
  ${extra[@]+"${extra[@]}"} out_root=outputs --dest "$OUT" --wall-s "$wall" --rc "$rc" 2>&1 | tee -a "$OUT/lite.log"
echo "lite pack rc=${PIPESTATUS[0]}; script at $(spent)s" | tee -a "$OUT/lite.log"
fi
ls -la "$OUT"
