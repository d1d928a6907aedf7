#!/usr/bin/env bash
# The device checks of one session on a lent GPU (no papermill there: lthlib is called directly).
# Usage (device tool): bash scripts/gpu_check.sh   with .gpudata/ (Debian's Fashion-MNIST .gz files) carried.
# Writes logs and a tarball of the study-tier runs (without the big weight files) to $OUT.
set -u
export PYTHONUNBUFFERED=1 LTHLIB_PROGRESS=lines
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
STUDY_SET=${STUDY_SET:-"n_train=5000 eval_every=5 pack=on pack_size=32"}
STUDY_LIMIT=${STUDY_LIMIT:-300}
nvidia-smi --query-gpu=name,memory.total --format=csv | tee "$OUT/gpu.txt"
python3 -c "import torch; print('torch', torch.__version__)" | tee -a "$OUT/gpu.txt"
# data: Debian's files, gunzipped where lthlib reads them
mkdir -p /usr/share/datasets/fashion-mnist && cp .gpudata/*.gz /usr/share/datasets/fashion-mnist/
python3 -m lthlib.data prepare fashion_mnist outputs/data 2>&1 | tail -1

if [ -z "${SKIP_DET:-}" ]; then
# 1. CUDA determinism (issue 10.6): two identical dense runs each way, and what deterministic costs
python3 - <<'PY' 2>&1 | tee "$OUT/determinism.txt"
import json, time, lthlib
res = {}
for det in (False, True):
    accs, walls = [], []
    for rep in (1, 2):
        exp = lthlib.load("params/fmnist_resnet20_10ep.yaml", {"out_root": f"/tmp/det{int(det)}_{rep}",
              "n_train": 10000, "epochs": 3, "deterministic": det, "pack": "off"}, lr=0.1, seed=1)
        rd = lthlib.pretrain(exp)
        m = rd.read_metrics()
        accs.append(m["final_test_acc"]); walls.append(m["wall_time_s"])
    res[det] = (accs, walls)
    print(f"deterministic={det}: final acc {accs}, identical={accs[0] == accs[1]}, wall {walls}")
print(f"deterministic costs x{sum(res[True][1]) / sum(res[False][1]):.2f} wall time")
PY
fi

# 2. the study tier's shortest length through the grid scheduler (issue 12.5, 13)
t0=$(date +%s)
timeout "$STUDY_LIMIT" python3 -m lthlib.schedule params/fmnist_resnet20_10ep.yaml $STUDY_SET out_root=outputs \
  > "$OUT/study.log" 2>&1; echo "study rc=$? wall=$(( $(date +%s) - t0 ))s" | tee -a "$OUT/study.log"
grep -E "step|grid|Error|error" "$OUT/study.log" | tail -25
# run folders without checkpoints and masks; weights only of the dense runs (θ0-θT analysis)
tar czf "$OUT/study_runs.tgz" --exclude=checkpoint.pt --exclude=mask.pt --exclude=.lock \
  --exclude='*/runs/[!p]*/final.pt' --exclude='*/runs/[!p]*/init.pt' outputs/fmnist_resnet20_10ep
ls -la "$OUT"

[ -n "${SKIP_BENCH:-}" ] && exit 0
# 3. pack rates and the whole-grid estimate (issue 13)
timeout 150 python3 bench/bench_training.py --models resnet20 --images resnet20=10000 --tickets 4 \
  --pack-sizes 1,8,16,32,64 --compile-mode reduce-overhead 2>&1 | tee "$OUT/bench.txt" | grep -v Warning
cp outputs/bench/rates.json "$OUT/" 2>/dev/null
