#!/usr/bin/env bash
# The first command of a session that has a GPU (issue 14): everything the CPU machines
# cannot measure, in one run of under 9 minutes (each part has a time limit; the limits
# sum to 530 s), written to at most 8 files in $OUT
# (or the folder given as $1; default ./gpu_session_out) for benchmarks/RESULTS.md:
#
#   env.txt        nvidia-smi, CuPy's configuration, versions
#   suite.txt      the test suite's CuPy half on the real CuPy
#   budget.txt     the launch/sync budget tests (counted on the strict stand-in)
#   bench_fp32.txt bench_step.py --backend cupy --vs-torch, the four Table 1 models
#   bench_tf32.txt the same with TF32 on both sides
#   profile.txt    GPU time per module call of one AE-ConvLSTM-flow step (CUDA events)
#   resume.txt     train.py --backend cupy: N steps against N/2 + --resume, compared
#   summary.txt    one line per part: exit status and seconds
#
# Run from anywhere, with CuPy, NumPy, h5py and pytest installed; needs no registry
# (the checkout is put on PYTHONPATH). Without a GPU it runs end to end on the stand-in
# (tests/strict_cupy.py): the parts that need a GPU print a SKIPPED line instead.
# GPU_SESSION_QUICK=1 makes every part small, and GPU_SESSION_SLACK=N multiplies every time
# limit by N (the test of this script uses both: on a busy CPU the stand-in is slow).
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_session_out}}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
export NNLITE_CACHE="${NNLITE_CACHE:-$(mktemp -d)}"
quick="${GPU_SESSION_QUICK:-0}"
py="${PYTHON:-python3}"
summary="$out/summary.txt"
: >"$summary"
if env -u NNLITE_CUPY "$py" -c "import sys, nnlite; sys.exit(0 if nnlite.gpu_available() else 1)" 2>/dev/null; then
    gpu=1
else
    gpu=0
    export NNLITE_CUPY=tests.strict_cupy  # the stand-in plays CuPy for train.py
fi
echo "gpu_session: gpu=$gpu quick=$quick out=$out $(date -u +%FT%TZ)" >>"$summary"

# part NAME SECONDS FILE COMMAND...: runs COMMAND under a time limit, appending to FILE
part() {
    local name=$1 limit=$(($2 * ${GPU_SESSION_SLACK:-1})) file=$out/$3 start rc
    shift 3
    echo "== $name: $*" >>"$file"
    start=$(date +%s)
    timeout "$limit" "$@" >>"$file" 2>&1
    rc=$?
    [ "$rc" = 124 ] && echo "TIMEOUT after ${limit}s" >>"$file"
    echo "$name rc=$rc $(($(date +%s) - start))s" | tee -a "$summary"
}

skip() {  # skip NAME FILE WHY
    echo "SKIPPED $1: $3" | tee -a "$out/$2" "$summary"
}

if [ "$quick" = 1 ]; then
    suite=(tests/test_gpu_parity.py -k "criteria or mixing") budget=(-k "budget and ae-conv]") models=ae-conv steps=1
    train_model=ae-conv iters=2
else
    suite=() budget=(-k budget) models=all steps=3 train_model=ae-convlstm-flow iters=6
fi

# 1. the machine
part versions 20 env.txt "$py" -c "import sys, numpy, nnlite; print(sys.version); print('numpy', numpy.__version__); print('gpu_available', nnlite.gpu_available())"
if [ "$gpu" = 1 ]; then
    part nvidia-smi 15 env.txt nvidia-smi
    part cupy-config 30 env.txt "$py" -c "import cupy; cupy.show_config(); print(cupy.cuda.runtime.getDeviceProperties(0)['name'])"
else
    skip nvidia-smi env.txt "no GPU"
    skip cupy-config env.txt "no GPU"
fi

# 2. the suite's CuPy half (on the stand-in without a GPU, as CI's second pass)
xdist=()
"$py" -c "import xdist" 2>/dev/null && [ "$quick" != 1 ] && xdist=(-n 4)
if [ "$gpu" = 1 ]; then
    part suite 160 suite.txt "$py" -m pytest -q -p no:cacheprovider --device-half-only -W error::DeprecationWarning "${xdist[@]}" "${suite[@]}"
else
    part suite-stand-in 160 suite.txt env NNLITE_XP=strict-cupy "$py" -m pytest -q -p no:cacheprovider -W error::DeprecationWarning "${xdist[@]}" "${suite[@]}"
fi

# 3. the step budget (launches, syncs, float64, peak bytes; always counted on the stand-in)
part budget 90 budget.txt env NNLITE_XP=strict-cupy "$py" -m pytest -q -s -p no:cacheprovider tests/test_budget.py "${budget[@]}"

# 4-6. timings against PyTorch, FP32 and TF32, and a profile of one step
if [ "$gpu" = 1 ]; then
    part bench-fp32 60 bench_fp32.txt "$py" benchmarks/bench_step.py --backend cupy --model "$models" --steps "$steps" --vs-torch
    part bench-tf32 50 bench_tf32.txt "$py" benchmarks/bench_step.py --backend cupy --model "$models" --steps "$steps" --vs-torch --tf32
    part profile 20 profile.txt "$py" benchmarks/bench_step.py --backend cupy --model ae-convlstm-flow --steps 1 --profile
else
    skip bench-fp32 bench_fp32.txt "GPU timings need a GPU (the stand-in's counts are in budget.txt)"
    skip bench-tf32 bench_tf32.txt "GPU timings need a GPU"
    skip profile profile.txt "CUDA events need a GPU"
fi

# 7. train.py on the device: N steps in one run against N/2, then --resume to N
runs=$(mktemp -d)
data=(--model "$train_model" --backend cupy --n-train 6 --n-val 2 --n-test 2 --batch-size 2 --seq-len 11
      --val-every 1000 --checkpoint-every 1000)
half=$((iters / 2))
part train-whole 35 resume.txt "$py" train.py "${data[@]}" --out "$runs/whole" --iterations "$iters"
part train-half 20 resume.txt "$py" train.py "${data[@]}" --out "$runs/resumed" --iterations "$half"
part train-resume 20 resume.txt "$py" train.py --resume --out "$runs/resumed" --iterations "$iters"
# Float32 tolerance: the GPU's atomic adds sum in any order, so two runs differ in the last
# bits, and RMSprop's first steps move a parameter by about lr * sign(gradient) (lr 1e-4),
# which can flip for a gradient near 0: the losses must agree to 1e-4 relative, the
# parameters to 10 lr (exactly, on the stand-in).
part resume-check 10 resume.txt "$py" - "$runs/whole" "$runs/resumed" <<'PY'
import json, os, sys
import numpy
import nnlite as nn
runs = sys.argv[1:3]
a, b = (nn.load(os.path.join(r, "checkpoint.h5")) for r in runs)
assert a["step"] == b["step"], (a["step"], b["step"])
la, lb = ([json.loads(line)["loss"] for line in open(os.path.join(r, "metrics.jsonl"))] for r in runs)
pa, pb = a["model"].parameters()[0], b["model"].parameters()[0]
diff = max(float(numpy.abs(nn.to_numpy(x) - nn.to_numpy(y)).max()) for x, y in zip(pa, pb))
print(f"resume: step {a['step']}, losses {la} vs {lb}, max |param diff| {diff:.3g}")
ok = len(la) == len(lb) and numpy.allclose(la, lb, rtol=1e-4, atol=0) and diff <= 1e-3
sys.exit(0 if ok else 1)
PY
rm -rf "$runs"
echo "gpu_session: done $(date -u +%FT%TZ)" >>"$summary"
! grep -E " rc=[1-9]" "$summary" >/dev/null
