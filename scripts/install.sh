#!/usr/bin/env bash
# Installs everything bitllm and its tests need on a fresh Debian machine:
# the aarch64 cross toolchain and qemu (NEON tests), the CPU build of PyTorch
# (converter and tests only), and bitllm itself (editable, with test extras).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v qemu-aarch64 >/dev/null || ! command -v aarch64-linux-gnu-gcc >/dev/null; then
  if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    qemu-user gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null
fi

python -m pip install -q "torch==2.13.0"
python -m pip install -q -e ".[test]"
