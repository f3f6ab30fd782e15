#!/usr/bin/env bash
# Capture QEMU "info mtree" dumps used as test fixtures by guestmem.
#
# Usage: scripts/capture-qemu-mtree.sh [OUTPUT_DIR] [MACHINE_ID...]
#   OUTPUT_DIR defaults to memory-core/src/test/resources/qemu-7.2 (relative to
#   the repository root). With no MACHINE_ID, every machine listed below is
#   captured.
#
# What it does, per machine:
#   * starts QEMU stopped (-S), without default devices (-nodefaults), with no
#     display and with TCG forced (-accel tcg, so no KVM-only regions appear),
#     and with a QMP channel on stdio (-qmp stdio); no guest, kernel or disk;
#   * runs these HMP commands through QMP "human-monitor-command":
#       info mtree        -> mtree.txt
#       info mtree -D     -> mtree-D.txt
#       info mtree -f     -> mtree-f.txt
#       info mtree -f -d  -> mtree-f-d.txt
#     and then sends the QMP "quit" command;
#   * writes command.txt with the exact QEMU command line, the output of
#     "<binary> --version" and the "dpkg -l" line of the Debian package that
#     ships the binary.
#
# Line endings: the HMP output carried in the QMP "return" string uses "\r\n"
# (QEMU's monitor turns every "\n" into "\r\n"). The JSON string is decoded
# exactly and then every "\r\n" is replaced with "\n"; nothing else (spaces,
# blank lines, trailing newline) is changed. A stray lone "\r" would be kept
# and makes the script fail, so the fixtures are guaranteed to be LF-only.
#
# Requirements: Debian bookworm's QEMU 7.2 packages (installed here when
# qemu-system-x86_64 is missing) and python3 (standard library only).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/.." && pwd)
OUT_DIR=${1:-$REPO_ROOT/memory-core/src/test/resources/qemu-7.2}
[ $# -gt 0 ] && shift

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
    apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y \
        qemu-system-x86 qemu-system-arm qemu-system-misc
fi

# Refuse anything but QEMU 7.2.x: the fixtures are meant to be 7.2 output.
ver_line=$(qemu-system-x86_64 --version | head -n 1)
case "$ver_line" in
    "QEMU emulator version 7.2."*) ;;
    *) echo "error: expected QEMU 7.2.x, got: $ver_line" >&2; exit 1 ;;
esac

COMMON=(-S -display none -accel tcg -qmp stdio)

# machine-id | binary | Debian package | extra arguments (word-split)
MACHINES=(
  "x86_64-pc|qemu-system-x86_64|qemu-system-x86|-nodefaults -M pc -m 128M"
  "x86_64-q35|qemu-system-x86_64|qemu-system-x86|-nodefaults -M q35 -m 128M"
  "x86_64-q35-devices|qemu-system-x86_64|qemu-system-x86|-nodefaults -M q35 -m 128M -device e1000 -device virtio-net-pci -device VGA"
  "aarch64-virt|qemu-system-aarch64|qemu-system-arm|-nodefaults -M virt -cpu cortex-a57 -m 128M"
  "arm-vexpress-a9|qemu-system-arm|qemu-system-arm|-nodefaults -M vexpress-a9 -m 128M"
  "riscv64-virt|qemu-system-riscv64|qemu-system-misc|-nodefaults -M virt -m 128M"
)

capture() {
    local id=$1 bin=$2 pkg=$3 extra=$4
    local dir=$OUT_DIR/$id
    local -a cmd
    # shellcheck disable=SC2206 # the extra arguments are meant to be split
    cmd=("$bin" $extra "${COMMON[@]}")
    mkdir -p "$dir"
    echo "== $id: ${cmd[*]}" >&2

    python3 - "$dir" "${cmd[@]}" <<'PY'
import json, os, subprocess, sys, threading

out_dir, argv = sys.argv[1], sys.argv[2:]
CAPTURES = [
    ("info mtree", "mtree.txt"),
    ("info mtree -D", "mtree-D.txt"),
    ("info mtree -f", "mtree-f.txt"),
    ("info mtree -f -d", "mtree-f-d.txt"),
]

proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
# Never let a hung QEMU block the script.
watchdog = threading.Timer(60, proc.kill)
watchdog.start()

def reply():
    """Next QMP reply, skipping asynchronous events."""
    while True:
        line = proc.stdout.readline()
        if not line:
            err = proc.stderr.read().decode(errors="replace")
            sys.exit("qemu exited early: " + err)
        msg = json.loads(line)
        if "event" not in msg:
            return msg

def execute(name, arguments=None):
    req = {"execute": name}
    if arguments is not None:
        req["arguments"] = arguments
    proc.stdin.write((json.dumps(req) + "\n").encode())
    proc.stdin.flush()
    msg = reply()
    if "error" in msg:
        sys.exit("%s failed: %r" % (name, msg["error"]))
    return msg["return"]

try:
    greeting = reply()
    if "QMP" not in greeting:
        sys.exit("no QMP greeting: %r" % greeting)
    execute("qmp_capabilities")
    for hmp, fname in CAPTURES:
        text = execute("human-monitor-command", {"command-line": hmp})
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            sys.exit("unexpected lone CR in output of %r" % hmp)
        if not text.strip():
            sys.exit("empty output from %r" % hmp)
        with open(os.path.join(out_dir, fname), "w", newline="") as f:
            f.write(text)
    execute("quit")
    proc.wait(timeout=30)
finally:
    watchdog.cancel()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
PY

    {
        echo "# command line (run from any directory; QMP on stdio drives it)"
        printf '%q ' "${cmd[@]}" | sed 's/ $//'
        echo
        echo
        echo "# $bin --version"
        "$bin" --version
        echo
        echo "# dpkg -l $pkg"
        dpkg -l "$pkg" | grep '^ii'
    } > "$dir/command.txt"
}

for entry in "${MACHINES[@]}"; do
    IFS='|' read -r id bin pkg extra <<< "$entry"
    if [ $# -gt 0 ]; then
        wanted=0
        for w in "$@"; do [ "$w" = "$id" ] && wanted=1; done
        [ $wanted = 1 ] || continue
    fi
    capture "$id" "$bin" "$pkg" "$extra"
done
echo "fixtures written to $OUT_DIR" >&2
