"""PyTorch CPU (2 threads) on the lavapipe comparison cases of bench/RESULTS.md: the 65 536-float add,
the 1M add, a [256] row added to [256,256], and the gkgnet-tiny 1×1 convs (forward, and forward +
backward into x and w). Median of `iters` calls after warm-up, milliseconds. Prints one JSON object."""
import json, time, sys
import torch

torch.set_num_threads(2)
torch.manual_seed(0)
iters = int(sys.argv[1]) if len(sys.argv) > 1 else 51


def med(fn, warm=5):
    for _ in range(warm):
        fn()
    ts = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    ts.sort()
    return ts[len(ts) // 2] * 1e3, ts[0] * 1e3


out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "results": []}
for n in (65536, 1 << 20):
    a, b = torch.randn(n), torch.randn(n)
    m, lo = med(lambda: a + b)
    out["results"].append({"name": "add", "shape": [n], "ms": m, "minMs": lo})
r, row = torch.randn(256, 256), torch.randn(256)
m, lo = med(lambda: r + row)
out["results"].append({"name": "add_bias", "shape": [256, 256], "ms": m, "minMs": lo})
for (B, Cin, S, Cout) in [(16, 16, 256, 8), (16, 8, 256, 32), (16, 32, 64, 16), (16, 16, 64, 64), (16, 192, 80, 48), (16, 128, 80, 32)]:
    x = torch.randn(B, Cin, S, 1, requires_grad=True)
    conv = torch.nn.Conv2d(Cin, Cout, 1)
    dy = torch.randn(B, Cout, S, 1)
    with torch.no_grad():
        m, lo = med(lambda: conv(x))
    fl = 2 * B * Cin * S * Cout
    out["results"].append({"name": "conv1x1", "shape": [B, Cin, S, Cout], "ms": m, "minMs": lo, "gflops": fl / m / 1e6})

    def fb():
        y = conv(x)
        y.backward(dy)
        x.grad = None
        conv.weight.grad = None
        conv.bias.grad = None
    m, lo = med(fb)
    out["results"].append({"name": "conv1x1_fwd_bwd", "shape": [B, Cin, S, Cout], "ms": m, "minMs": lo, "gflops": 3 * fl / m / 1e6})
print(json.dumps(out))
