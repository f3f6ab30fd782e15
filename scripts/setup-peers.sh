#!/usr/bin/env bash
# Installs the peers that ./guestmem peers measures guestmem against, and their tests need: Debian's Unicorn 2
# (libunicorn2, called through FFM) and rust-vmm's vm-memory crate (librust-vm-memory-dev, with cargo and rustc to
# build peers/vm-memory-bench offline from it). Idempotent: does nothing when all are installed. As root it installs
# them with apt-get; otherwise it prints one line saying what to install and exits 0, so that the comparison marks
# the missing peer in its table and the tests skip with the same reason.
set -uo pipefail

packages=(libunicorn2 librust-vm-memory-dev cargo)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-peers: installing ${missing[*]} (apt-get install)" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        exit 0
    fi
fi
echo "setup-peers: ${missing[*]} missing: install with 'apt-get install ${missing[*]}' (as root)" >&2
exit 0
