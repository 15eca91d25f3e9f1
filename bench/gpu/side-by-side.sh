#!/usr/bin/env bash
# Every GPU figure of the speed targets in one device-tool call: webvig and PyTorch side by side on
# the same GPU, in one process tree, ratios only (bench/RESULTS.md says what each target is).
#
# Here, once:   node scripts/setup.mjs --build
#               ../shared/tools/gpu/pack
#               bench/gpu/prepare-cache.sh GKGNET_CHECKOUT EFFICIENT_AI_BACKBONES_CHECKOUT
# Device tool:  carry [".gpu-pack", "dist", ".cache"], timeout_s 570, command
#               bash .gpu-pack/enter.sh bash bench/gpu/side-by-side.sh
# Check it here first (lavapipe, PyTorch CPU, tiny cases, a minute or two):
#               SMOKE=1 OUT=/tmp/sbs bash bench/gpu/side-by-side.sh
#
# Parts run in priority order, each under its own time limit and all under BUDGET seconds (default
# 520), so a slow part costs only its own figures. $OUT gets: summary.txt (each target: measured, met
# or not), train.txt and kernels.txt (compare.py's tables), info.json (webvig info with the f16 and
# subgroup-matrix toggles), raw.json (every JSON output, by part), profile.txt (the first case's
# fp32 and mixed steps, per kernel and call site) and log.txt (stderr, timings). summary.txt also
# says whether the fixtures' parity with PyTorch holds on this GPU.
set -uo pipefail
OUT=${OUT:?OUT must name the folder for the results}
mkdir -p "$OUT"
raw=$(mktemp -d)
start=$SECONDS
budget=${BUDGET:-520}
log() { echo "[$((SECONDS - start))s] $*" >> "$OUT/log.txt"; }

# run LIMIT PART OUTFILE CMD...: CMD's stdout into OUTFILE, for at most LIMIT seconds and what is left.
run() {
  local limit=$1 part=$2 out=$3
  shift 3
  local left=$((budget - (SECONDS - start)))
  ((left < limit)) && limit=$left
  if ((limit < 15)); then
    log "$part: skipped, the budget is spent"
    return 1
  fi
  log "$part: up to ${limit}s: $*"
  timeout "$limit" "$@" > "$out" 2>> "$OUT/log.txt"
  local rc=$?
  log "$part: rc $rc"
  return $rc
}

webvig=(node dist/train/cli.js)
toggles=vulkan_enable_f16_on_nvidia,allow_unsafe_apis
if [[ -n ${SMOKE:-} ]]; then
  # The same parts at sizes a CPU finishes in seconds: a check of this script, not figures.
  train_cases=(gkgnet-tiny@64:4 gkgnet-tiny@64:2)
  torch=(python3 bench/pytorch/train_step.py "${GKGNET:-.cache/GKGNet}" --device cpu --threads 2)
  kernels=(--size tiny)
  torch_kernels=()
  steps=(--warmup 1 --iters 2)
else
  # The issue's cases: GKGNet-S 448 batch 16, Pyramid ViG-S 224 batch 64.
  train_cases=(gkgnet-s@448:16 vig-s@224:64)
  torch=(python3 bench/pytorch/train_step.py "${GKGNET:-.cache/GKGNet}")
  kernels=(--size large)
  torch_kernels=(--size large)
  steps=(--warmup 2 --iters 5)
fi
vig=(--vig-repo "${VIG:-.cache/Efficient-AI-Backbones}")
torch_cases=()
for c in "${train_cases[@]}"; do torch_cases+=(--case "$c"); done

log "$(python3 -c 'import torch, numpy; print("torch", torch.__version__, "numpy", numpy.__version__, "cuda", torch.cuda.is_available())' 2>&1 | tail -1)"

# 1. What the adapter offers (shader-f16, subgroups, subgroup-matrix configs), with the toggles.
WEBVIG_DAWN_TOGGLES=$toggles run 45 info "$OUT/info.json" "${webvig[@]}" info --json

# 1b. Correctness on this GPU before its speed: every fixture of test/fixtures against PyTorch's
#     outputs and gradients (the gpu kernel profile; seconds, mostly pipeline compilation).
run 60 "webvig parity" "$raw/webvig-parity.json" "${webvig[@]}" parity test/fixtures --json

# 2. Training steps, fp32: webvig per case, PyTorch eager fp32 (TF32 off), TF32 and AMP.
for c in "${train_cases[@]}"; do
  run 150 "webvig train $c fp32" "$raw/webvig-train-$c.json" "${webvig[@]}" bench --suite train --case "$c" "${steps[@]}" --json
done
run 120 "pytorch train fp32" "$raw/torch-train-fp32.json" "${torch[@]}" "${vig[@]}" "${torch_cases[@]}" "${steps[@]}"
if [[ -z ${SMOKE:-} ]]; then
  run 90 "pytorch train tf32" "$raw/torch-train-tf32.json" "${torch[@]}" "${vig[@]}" "${torch_cases[@]}" "${steps[@]}" --tf32
  run 90 "pytorch train amp" "$raw/torch-train-amp.json" "${torch[@]}" "${vig[@]}" "${torch_cases[@]}" "${steps[@]}" --amp
fi

# 3. --precision mixed (f16 operands; Dawn offers shader-f16 on NVIDIA only with the first toggle, and
#    subgroup matrices, i.e. tensor cores, only with the second) against AMP. The bench checks the
#    matrix tiles against the register tiles first; its matrix_tiles field says what the convs ran on.
c=${train_cases[0]}
WEBVIG_DAWN_TOGGLES=$toggles run 150 "webvig train $c mixed" "$raw/webvig-train-mixed-$c.json" \
  "${webvig[@]}" bench --suite train --case "$c" --precision mixed "${steps[@]}" --json

# 4. Kernels: SGEMM against cuBLAS, the fused KNN against the dense distance matrix + topk.
run 120 "webvig kernels" "$raw/webvig-kernels.json" "${webvig[@]}" bench --suite kernels "${kernels[@]}" --only matmul,knn --json
if [[ -z ${SMOKE:-} ]]; then
  run 60 "pytorch matmul" "$raw/torch-matmul.json" python3 bench/pytorch/matmul.py
  run 60 "pytorch knn" "$raw/torch-knn.json" python3 bench/pytorch/kernels.py "${torch_kernels[@]}" --only knn
fi

# 5. What holds the first case back: its step's GPU time per kernel and call site (one profiled step;
#    the CLI prints the table on stderr), for bench/RESULTS.md's unmet targets.
c=${train_cases[0]}
run 90 "webvig profile $c" "$raw/webvig-profile-step.json" \
  bash -c 'WEBVIG_PROFILE=sites "$@" 2> "$0"' "$OUT/profile.txt" "${webvig[@]}" bench --suite train --case "$c" --warmup 1 --iters 1 --json

# 6. The same for its --precision mixed step (the convolutions on tensor-core matrix tiles where the
#    adapter has them), appended to profile.txt: where the mixed target's time goes.
run 90 "webvig profile $c mixed" "$raw/webvig-profile-step-mixed.json" \
  bash -c 'echo "## --precision mixed" >> "$0"; WEBVIG_PROFILE=sites "$@" 2>> "$0"' "$OUT/profile.txt" \
  env WEBVIG_DAWN_TOGGLES=$toggles "${webvig[@]}" bench --suite train --case "$c" --precision mixed --warmup 1 --iters 1 --json

# Tables, targets and the raw outputs.
python3 - "$raw" "$OUT" <<'PY' 2>> "$OUT/log.txt"
import glob, json, os, subprocess, sys
raw, out = sys.argv[1], sys.argv[2]
files = {os.path.basename(p)[:-5]: p for p in glob.glob(os.path.join(raw, '*.json'))}
loaded = {}
for name, path in files.items():
    try:
        with open(path) as f:
            loaded[name] = json.load(f)
    except (OSError, ValueError) as e:
        print(f'{name}: no JSON ({e})', file=sys.stderr)
with open(os.path.join(out, 'raw.json'), 'w') as f:
    json.dump(loaded, f)

def compare(ours, theirs):
    paths = [files[n] for n in [ours, *theirs] if n in loaded]
    if ours not in loaded or len(paths) < 2:
        return None, f'{ours} vs {", ".join(theirs)}: missing output\n'
    cmd = [sys.executable, 'bench/pytorch/compare.py', *paths]
    table = subprocess.run(cmd, capture_output=True, text=True).stdout
    rows = json.loads(subprocess.run([*cmd, '--json'], capture_output=True, text=True).stdout or '{"rows": []}')['rows']
    return rows, table

targets, tables = [], {'train': [], 'kernels': []}
def target(what, value, goal, fmt='{:.2f}x', at_most=False):
    met = 'no figure' if value is None else ('met' if (value <= goal if at_most else value >= goal) else 'not met')
    shown = '-' if value is None else fmt.format(value)
    targets.append(f'{what}: {shown} (target {"<=" if at_most else ">="} {fmt.format(goal)}): {met}')

parity = loaded.get('webvig-parity')
if parity is None:
    targets.append('parity with PyTorch (test/fixtures): no figure')
else:
    checks = [c for f in parity.get('files', []) for c in f.get('checks', [])]
    failed = [f"{f['file']} {f['mode']}" for f in parity.get('files', []) if not f.get('pass')]
    # A NaN or a missing gradient is an infinite error, which JSON carries as null.
    err = lambda c: float('inf') if c['rel_err'] is None else c['rel_err']
    worst = max(checks, key=lambda c: err(c) / c['tol'], default=None)
    shown = f"worst {worst['tensor']} rel_err {err(worst):.3g} (tol {worst['tol']:g})" if worst else 'no checks'
    verdict = 'pass' if parity.get('pass') else f"FAIL in {', '.join(failed)}"
    targets.append(f"parity with PyTorch (test/fixtures, {len(parity.get('files', []))} file modes, {len(checks)} tensors): {verdict}; {shown}")

def speed(rows, name):
    return next((r for r in rows or [] if r['name'] == name), None)

for ours in sorted(n for n in loaded if n.startswith('webvig-train-') and not n.startswith('webvig-train-mixed-')):
    case = ours[len('webvig-train-'):]
    name = case.split(':')[0]
    if name.startswith('gkgnet'):  # the target names GKGNet-S 448; a smoke run shows its tiny case
        step = next((r for r in loaded[ours].get('results', []) if r['name'] == name), None)
        share = step['host_ms_per_step'] / step['ms'] if step and 'host_ms_per_step' in step else None
        target(f'{case} host time (encode + submit) per GPU step', share, 0.02, '{:.2%}', at_most=True)
    for precision in ('fp32', 'tf32', 'amp'):
        rows, table = compare(ours, [f'torch-train-{precision}'])
        tables['train'].append(f'## {case}: webvig fp32 vs PyTorch {precision}\n{table}')
        row = speed(rows, name)
        if precision == 'fp32' and row:
            goal = 1.5 if name.startswith('vig-s') else 1.6
            target(f'{name} fp32 speed vs PyTorch eager fp32', row['speed'], goal)
            if 'webvig_peak_bytes' in row:
                target(f'{name} peak memory (live tensors vs max_memory_allocated), PyTorch / webvig', row['pytorch_peak_bytes'] / max(1, row['webvig_peak_bytes']), 1.0)
            if 'webvig_pool_peak_bytes' in row:
                target(f'{name} peak memory (buffer pool vs max_memory_reserved), PyTorch / webvig', row['pytorch_reserved_peak_bytes'] / max(1, row['webvig_pool_peak_bytes']), 1.0)
for ours in sorted(n for n in loaded if n.startswith('webvig-train-mixed-')):
    case = ours[len('webvig-train-mixed-'):]
    rows, table = compare(ours, ['torch-train-amp'])
    tables['train'].append(f'## {case}: webvig --precision mixed vs PyTorch AMP\n{table}')
    row = speed(rows, case.split(':')[0])
    target(f'{case.split(":")[0]} mixed speed vs PyTorch AMP', row and row['speed'], 1.0)
    if row and 'webvig_peak_bytes' in row:
        target(f'{case.split(":")[0]} mixed peak memory (live tensors vs AMP max_memory_allocated), PyTorch / webvig', row['pytorch_peak_bytes'] / max(1, row['webvig_peak_bytes']), 1.0)
    ran = [r.get('matrix_tiles', '?') for r in loaded[ours].get('results', [])]
    acts = [r.get('activations', '?') for r in loaded[ours].get('results', [])]
    targets.append(f'{case} mixed: convolution GEMMs on {", ".join(ran) or "?"} (log.txt says why, if none); activations {", ".join(acts) or "?"}')
# A broken step still times: each webvig training case's loss after its timed steps (null: NaN or
# infinity) and, mixed, the loss scale they left.
for ours in sorted(n for n in loaded if n.startswith('webvig-train-')):
    for r in loaded[ours].get('results', []):
        loss = r.get('loss_after')
        state = 'finite' if isinstance(loss, (int, float)) else 'NOT FINITE: this step is broken, its speed does not count'
        scale = f", loss scale {r['loss_scale']:g}" if 'loss_scale' in r else ''
        targets.append(f"{ours[len('webvig-train-'):]} ({r.get('precision', '?')}): loss after the timed steps {loss} ({state}){scale}")
rows, table = compare('webvig-kernels', ['torch-matmul', 'torch-knn'])
tables['kernels'].append(table)
for r in rows or []:
    if r['name'] == 'matmul' and r['shape'][0] == 4096:
        target(f"SGEMM {r['shape']} vs cuBLAS", r['speed'], 0.9)
    if r['name'] == 'knn' and r['shape'][1] == 144 * 144:  # GKGNet-S at 576: 144² patches
        target(f"KNN at GKGNet-S 576 stage 0 {r['shape']} vs distance matrix + topk", r['speed'], 4.0)
for part, text in tables.items():
    with open(os.path.join(out, f'{part}.txt'), 'w') as f:
        f.write('\n'.join(text))
device = next((v['device'] for v in loaded.values() if isinstance(v, dict) and 'device' in v), {})
with open(os.path.join(out, 'summary.txt'), 'w') as f:
    f.write(f"{json.dumps(device)}\n" + '\n'.join(targets) + '\n')
PY
log "done"
cat "$OUT/summary.txt" 2>/dev/null
