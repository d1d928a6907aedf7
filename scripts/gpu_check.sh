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
#            scheduler within LITE_LIMIT seconds (480), then `python -m lthlib.transfer pack` writes its
#            runs' results, provenance.json and the weights the report reads to $OUT (<= 56 MiB in parts of
#            15 MiB). Run it alone, with the revision named (the copy there has no .git):
#              CHECKS=lite LTHLIB_CODE_VERSION=$(git describe --always --dirty) bash scripts/gpu_check.sh
#            then here: python -m lthlib.transfer unpack <fetched folder> --out outputs-lite;
#            make report OUT=outputs-lite; python -m lthlib.readme publish lite_fmnist_resnet20 --out
#            outputs-lite --report
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
CHECKS=${CHECKS:-"capture bench grid"}
has() { [[ " $CHECKS " == *" $1 "* ]]; }
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
[ -e /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz ] || { mkdir -p /usr/share/datasets/fashion-mnist && cp .gpudata/*.gz /usr/share/datasets/fashion-mnist/; }
python3 -m lthlib.data prepare fashion_mnist outputs/data 2>&1 | tail -1

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
BENCH_ARGS=${BENCH_ARGS:-"--images resnet20=5000 --pack-sizes 1,6,12,22,32,64 --profile 64"}
timeout ${BENCH_LIMIT:-330} python3 bench/bench_training.py --models resnet20 --tickets 4 $BENCH_ARGS \
  --variants "${VARIANTS:-eager,graph,sub1x1+graph,s2d+graph,bf16+graph,compile+graph:6/22/64}" 2>&1 | tee "$OUT/bench.txt" | grep -v Warning
cp outputs/bench/rates.json "$OUT/" 2>/dev/null
fi

if has grid; then
t0=$(date +%s)
timeout 90 python3 -m lthlib.schedule params/fmnist_resnet20_10ep.yaml ${GRID_SET:-n_train=3000 epochs=2} \
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
timeout "${STUDY_LIMIT:-300}" python3 -m lthlib.schedule params/fmnist_resnet20_10ep.yaml \
  ${STUDY_SET:-n_train=5000 eval_every=5 pack=on pack_size=32} out_root=outputs > "$OUT/study.log" 2>&1
echo "study rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/study.log"
tar czf "$OUT/study_runs.tgz" --exclude=checkpoint.pt --exclude=mask.pt --exclude=.lock \
  --exclude='*/runs/[!p]*/final.pt' --exclude='*/runs/[!p]*/init.pt' outputs/fmnist_resnet20_10ep
fi

if has lite; then
t0=$(date +%s)
timeout "${LITE_LIMIT:-480}" python3 -m lthlib.schedule params/lite_fmnist_resnet20.yaml ${LITE_SET:-} \
  out_root=outputs > "$OUT/lite.log" 2>&1
rc=$?; wall=$(( $(date +%s) - t0 ))
echo "lite rc=$rc wall=${wall}s code=${LTHLIB_CODE_VERSION:-unknown}" | tee -a "$OUT/lite.log"
grep -E "step .*done|error|Error|trained in packs" "$OUT/lite.log" | tail -6
timeout 90 python3 -m lthlib.transfer pack params/lite_fmnist_resnet20.yaml ${LITE_SET:-} out_root=outputs \
  --dest "$OUT" --wall-s "$wall" --rc "$rc" 2>&1 | tee -a "$OUT/lite.log"
fi
ls -la "$OUT"
