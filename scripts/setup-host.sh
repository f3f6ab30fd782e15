#!/usr/bin/env bash
# Installs what the test suite needs beyond a JDK and Maven: Debian's qemu-storage-daemon (package
# qemu-system-common), the real vhost-user backend that the vhost-user tests run. Idempotent: does nothing when the
# daemon is already on PATH. As root it installs it with apt-get; otherwise it prints one line saying what to
# install and exits 0, so that the tests themselves fail with the same line rather than skip.
set -uo pipefail

if command -v qemu-storage-daemon >/dev/null 2>&1; then
    exit 0
fi
if [[ "$(id -u)" -eq 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "setup-host: installing qemu-storage-daemon (apt-get install qemu-system-common)" >&2
    if DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-common >/dev/null; then
        command -v qemu-storage-daemon >/dev/null 2>&1 && exit 0
    fi
fi
echo "setup-host: qemu-storage-daemon missing: install it with 'apt-get install qemu-system-common' (as root)" >&2
exit 0
