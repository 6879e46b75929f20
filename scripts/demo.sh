#!/usr/bin/env bash
# The main job on a fresh machine: write a random-weight checkpoint with
# BitNet-b1.58-2B-4T's exact shapes in its published format, convert it, run it
# and benchmark it. Random weights talk nonsense; the point is the pipeline and speed.
set -euo pipefail
work=${1:-${TMPDIR:-/tmp}/bitllm-demo}
mkdir -p "$work"
[ -f "$work/checkpoint/config.json" ] || python "$(dirname "$0")/make_bitnet_2b4t_checkpoint.py" "$work/checkpoint"
bit-convert "$work/checkpoint" -o "$work/bitnet-2b4t.gguf" --head-type q4_0 --force
bit-run -m "$work/bitnet-2b4t.gguf" -p "The capital of France is" -n 32 --temp 0
bit-bench -m "$work/bitnet-2b4t.gguf" -r 3
