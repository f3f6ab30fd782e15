#!/usr/bin/env bash
# Installs what rebuilds the RISC-V guest programs of native-test-images/src/main/riscv: Debian's bare-metal
# riscv64 cross compiler and picolibc. Idempotent: does nothing when both are there. Needs root (or sudo) to install.
set -euo pipefail

packages=(gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "setup-riscv.sh: install ${missing[*]} (Debian/Ubuntu packages) to rebuild the guest programs" >&2
    exit 1
fi
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
echo "setup-riscv.sh: installing ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
