#!/usr/bin/env bash
# Builds target/hsdis/hsdis-amd64.so from scripts/hsdis/hsdis.c: the disassembler HotSpot's -XX:+PrintAssembly needs
# to print compiled code as instructions (the JDK ships without one). Needs gcc and Capstone (libcapstone-dev); as
# root it installs Capstone with apt-get when missing, otherwise it says what to install and exits 3 (as it does off
# x86_64); a build that fails exits 1. Prints the library's directory, for LD_LIBRARY_PATH. Does nothing but print it
# when the library is newer than its source.
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="$ROOT/scripts/hsdis/hsdis.c"
OUT="$ROOT/target/hsdis"
LIB="$OUT/hsdis-amd64.so"

[[ "$(uname -m)" == x86_64 ]] || { echo "build-hsdis: $(uname -m): only x86_64 is supported" >&2; exit 3; }
if [[ -f "$LIB" && "$LIB" -nt "$SRC" ]]; then
    echo "$OUT"
    exit 0
fi
if ! dpkg-query -W -f='${Status}' libcapstone-dev 2>/dev/null | grep -q 'install ok installed'; then
    if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
        echo "build-hsdis: installing libcapstone-dev (apt-get install)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libcapstone-dev >/dev/null
    fi
    dpkg-query -W -f='${Status}' libcapstone-dev 2>/dev/null | grep -q 'install ok installed' \
        || { echo "build-hsdis: libcapstone-dev missing: install with 'apt-get install libcapstone-dev' (as root)" >&2; exit 3; }
fi
mkdir -p "$OUT"
gcc -O2 -Wall -Werror -shared -fPIC -o "$LIB" "$SRC" -lcapstone || { echo "build-hsdis: gcc failed on $SRC" >&2; exit 1; }
echo "$OUT"
