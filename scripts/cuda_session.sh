#!/usr/bin/env bash
# On a machine with an NVIDIA GPU: build bitllm for it, run the GPU tests, time
# the 2B-4T-shaped model end to end (pp512, tg128; with and without overlapped
# launches) and the kernels against the card's copy bandwidth. Every step's log
# goes to OUTDIR (default cuda-results); a failing step does not stop the later
# ones. SANITIZE=1 adds a compute-sanitizer memcheck of two model tests. Usage:
#   bash scripts/cuda_session.sh [OUTDIR]     (CUDA_ARCH=90 by default)
set -u
out=${1:-cuda-results}
arch=${CUDA_ARCH:-90}
model=${BITNET_2B4T_DIR:-/tmp/bitnet-2b4t}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

step() { # name, command...: runs it, keeps its log, prints its tail
    local name=$1
    shift
    local started=$SECONDS
    "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc, $((SECONDS - started)) s"
    tail -n "${TAIL:-12}" "$out/$name.log"
    return $rc
}

make_model() { # the 2B-4T-shaped checkpoint, converted with bit-convert's defaults
    [ -f "$model/model.gguf" ] && return 0
    step checkpoint python3 scripts/make_bitnet_2b4t_checkpoint.py "$model/checkpoint" &&
        step convert python3 -m bitllm.convert.cli "$model/checkpoint" -o "$model/model.gguf"
}

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >"$out/gpu.txt"
cat "$out/gpu.txt"
step build python3 -m pip install -v --no-build-isolation --no-deps -e . \
    -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="$arch" || exit 1
make_model >"$out/model-steps.txt" 2>&1 & # CPU work, beside the GPU tests
TAIL=25 step tests python3 -m pytest -q -p no:cacheprovider -rf tests/cuda
grep -E "^(FAILED|ERROR)|Error:|error " "$out/tests.log" | head -30
if [ "${SANITIZE:-0}" = 1 ]; then # out-of-bounds or uninitialized device memory
    step sanitize compute-sanitizer --tool memcheck --error-exitcode 9 \
        python3 -m pytest -q -p no:cacheprovider \
        "tests/cuda/test_cuda_model.py::test_decode_equals_prefill_on_the_gpu[bitnet-2b4t]" \
        "tests/cuda/test_cuda_model.py::test_decode_equals_prefill_on_the_gpu[onebit]"
fi
wait
cat "$out/model-steps.txt"
bench=(python3 -m bitllm.runtime.bench -m "$model/model.gguf" --device cuda -p 512 -n 128 -r 5)
TAIL=8 step e2e "${bench[@]}"
TAIL=8 BITLLM_CUDA_OVERLAP=0 step e2e_no_overlap "${bench[@]}"
TAIL=40 step kernels python3 scripts/bench_cuda.py --act-bits 8 --types bt2 bt1 bs1 q8_0 q4_0 \
    --out "$out/kernels.md"
