#!/usr/bin/env python3
"""Ratios of webvig to PyTorch, row by row: compare.py WEBVIG.json PYTORCH.json [PYTORCH.json ...] [--json].

Every file is one `{device, suite, config, results}` object (webvig bench --json, or the output of
one of the scripts here; several PyTorch files are pooled, e.g. matmul.py's and kernels.py's). Rows are matched on (name, shape); for each pair it prints both median times and
`speed` = PyTorch ms / webvig ms (1.0: as fast as PyTorch, 0.5: twice as slow), plus the matching
rates (GFLOP/s, GB/s or images/s) and, for knn, webvig's fused_bytes against PyTorch's peak_bytes;
for train steps, webvig's peak_gpu_bytes (its pool's high-water mark) against PyTorch's peak_bytes.
Rows without a partner are listed at the end. Needs only the standard library.
"""
import argparse
import json
import sys

RATES = ('gflops', 'gbps', 'images_per_s')


def load(path):
    with open(path) as f:
        return json.load(f)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('webvig', help='webvig bench --json output')
    p.add_argument('pytorch', nargs='+', help='outputs of bench/pytorch/{matmul,kernels,train_step}.py')
    p.add_argument('--json', action='store_true', help='print the matched rows as one JSON object instead of a table')
    args = p.parse_args()
    ours, theirs = load(args.webvig), [load(path) for path in args.pytorch]
    key = lambda r: (r['name'], tuple(r['shape']))  # noqa: E731
    torch_rows = {key(r): r for t in theirs for r in t['results']}
    rows, unmatched = [], []
    for r in ours['results']:
        t = torch_rows.pop(key(r), None)
        if t is None:
            unmatched.append(f"webvig only: {r['name']} {r['shape']}")
            continue
        row = {'name': r['name'], 'shape': r['shape'], 'webvig_ms': r['ms'], 'pytorch_ms': t['ms'], 'speed': t['ms'] / r['ms'],
               'webvig_method': r['method'], 'pytorch_method': t['method']}
        for k in RATES:
            if k in r and k in t:
                row[f'webvig_{k}'], row[f'pytorch_{k}'] = r[k], t[k]
        if 'fused_bytes' in r and 'peak_bytes' in t:
            row['webvig_fused_bytes'], row['pytorch_peak_bytes'] = r['fused_bytes'], t['peak_bytes']
        # Live tensors' high-water mark against max_memory_allocated, the pool's against max_memory_reserved.
        if 'peak_live_bytes' in r and 'peak_bytes' in t:
            row['webvig_peak_bytes'], row['pytorch_peak_bytes'] = r['peak_live_bytes'], t['peak_bytes']
        if 'peak_gpu_bytes' in r and 'peak_reserved_bytes' in t:
            row['webvig_pool_peak_bytes'], row['pytorch_reserved_peak_bytes'] = r['peak_gpu_bytes'], t['peak_reserved_bytes']
        rows.append(row)
    unmatched += [f"pytorch only: {name} {list(shape)}" for name, shape in torch_rows]

    if args.json:
        print(json.dumps({'webvig_device': ours['device'], 'pytorch_device': theirs[0]['device'], 'rows': rows, 'unmatched': unmatched}))
        return
    print(f"webvig:  {ours['device'].get('adapter', {}).get('device', '?')} ({ours['device'].get('backend', '?')})")
    print(f"pytorch: {theirs[0]['device'].get('adapter', {}).get('device', '?')} ({theirs[0]['device'].get('backend', '?')})")
    print(f"{'name':20s} {'shape':30s} {'webvig ms':>10s} {'torch ms':>10s} {'speed':>7s}  rates / memory")
    for row in rows:
        notes = [f"{k}: {row[f'webvig_{k}']:.4g} vs {row[f'pytorch_{k}']:.4g}" for k in RATES if f'webvig_{k}' in row]
        if 'webvig_fused_bytes' in row:
            notes.append(f"MB: {row['webvig_fused_bytes'] / 2**20:.1f} fused vs {row['pytorch_peak_bytes'] / 2**20:.1f} peak")
        if 'webvig_peak_bytes' in row:
            notes.append(f"peak MB: {row['webvig_peak_bytes'] / 2**20:.1f} vs {row['pytorch_peak_bytes'] / 2**20:.1f}")
        if 'webvig_pool_peak_bytes' in row:
            notes.append(f"reserved MB: {row['webvig_pool_peak_bytes'] / 2**20:.1f} vs {row['pytorch_reserved_peak_bytes'] / 2**20:.1f}")
        print(f"{row['name']:20s} {str(row['shape']):30s} {row['webvig_ms']:10.4g} {row['pytorch_ms']:10.4g} {row['speed']:7.3f}  {'; '.join(notes)}")
    for u in unmatched:
        print(u, file=sys.stderr)


if __name__ == '__main__':
    main()
