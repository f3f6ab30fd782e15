#!/usr/bin/env bash
# Builds the guest programs into flat images: ./build.sh [OUTDIR] (default: this directory, where the committed
# images live). Needs Debian's gcc-riscv64-unknown-elf (scripts/setup-riscv.sh installs it). The flags pin
# everything that would make two builds differ (paths, build ids), so a rebuild gives the same bytes.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
out=${1:-.}
mkdir -p "$out"
cc=riscv64-unknown-elf-gcc
objcopy=riscv64-unknown-elf-objcopy
command -v "$cc" >/dev/null 2>&1 || { echo "build.sh: needs $cc (apt-get install gcc-riscv64-unknown-elf)" >&2; exit 1; }
flags=(-march=rv64ima_zicsr_zifencei -mabi=lp64 -mcmodel=medany -O2 -std=gnu11 -Wall -Wextra -Werror
       -ffreestanding -nostdlib -fno-builtin -fno-tree-loop-distribute-patterns -fno-pic
       -ffile-prefix-map="$PWD"=. -Wl,--build-id=none -Wl,--no-warn-rwx-segments -T link.ld)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for program in memcpy sort hash selfmod spinlock render uart; do
    "$cc" "${flags[@]}" -o "$tmp/$program.elf" crt0.S lib.c "$program.c"
    "$objcopy" -O binary "$tmp/$program.elf" "$out/$program.bin"
done
