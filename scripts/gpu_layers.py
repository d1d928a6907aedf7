"""Device check: which packed ResNet-20 convolutions take a pack's step time, with and without cuDNN
autotuning, and the pack rates with autotuning on (the engine's default, cudnn_benchmark: true).
    python3 scripts/gpu_layers.py      (writes $OUT/layers.json)"""
import json, os, sys, time
sys.path.insert(0, "bench"); sys.path.insert(0, ".")
import torch
import bench_training as b
from lthlib import packing

dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
K = 64 if dev.type == "cuda" else 2
out = {}


def layer_times(bench: bool, reps: int = 10) -> dict:
    torch.backends.cudnn.benchmark = bench
    net = packing.pack([m for m, _ in b.tickets("resnet20", "cifar10", K)]).to(dev, memory_format=torch.channels_last)
    shapes = {}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: shapes.setdefault(n, i[0].shape) and None)
             for n, m in net.inner.named_modules() if isinstance(m, torch.nn.Conv2d)]
    net(torch.randn(64, K, 3, 32, 32, device=dev))
    for h in hooks:
        h.remove()
    times = {}
    for n, shape in shapes.items():
        conv = dict(net.inner.named_modules())[n]
        x = torch.randn(shape, device=dev).contiguous(memory_format=torch.channels_last).requires_grad_(n != "conv1")
        for i in range(reps + 3):
            if i == 3:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
            conv(x).sum().backward()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        times[f"{n} {tuple(shape)[1:]} g{conv.groups}"] = 1e3 * (time.perf_counter() - t0) / reps
    return times


for bench in (False, True):
    t = layer_times(bench)
    out[f"layers_ms_benchmark_{bench}"] = t
    print(f"cudnn.benchmark={bench}: conv fwd+bwd total {sum(t.values()):.1f} ms per step of a pack of {K}")
    for k, v in sorted(t.items(), key=lambda kv: -kv[1])[:8]:
        print(f"   {v:7.2f} ms  {k}")
torch.backends.cudnn.benchmark = True
data, _ = b.load_bench_data("cifar10", 5000 if dev.type == "cuda" else 256)
for v, sizes in [("graph", [6, 64]), ("bf16+graph", [64])]:
    out[f"rates_{v}_benchmark_True"] = r = b.pack_rates("resnet20", "cifar10", data, sizes if dev.type == "cuda" else [2],
                                                         dev, v)
    print(v, "cudnn.benchmark=True", {k: round(x) for k, x in r.items()}, flush=True)
with open(os.path.join(os.environ.get("OUT", "/tmp"), "layers.json"), "w") as f:
    json.dump(out, f, indent=1)
