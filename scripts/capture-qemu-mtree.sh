#!/usr/bin/env bash
# Capture QEMU "info mtree" dumps used as test fixtures by guestmem.
#
# Usage: scripts/capture-qemu-mtree.sh [OUTPUT_DIR] [MACHINE_ID...]
#   OUTPUT_DIR defaults to memory-tools/src/test/resources/qemu-7.2 (relative to
#   the repository root). With no MACHINE_ID, every machine listed below is
#   captured.
#
# What it does, per machine:
#   * starts QEMU stopped (-S), without default devices (-nodefaults), with no
#     display and with TCG forced (-accel tcg, so no KVM-only regions appear),
#     and with a QMP channel on stdio (-qmp stdio); no guest, kernel or disk;
#   * mode "stopped" (most machines): the CPUs never run, so the dump is the
#     board as QEMU built it (PCI BARs unassigned, PAM/SMRAM at reset values);
#   * mode "firmware" (the *-seabios variants only): after connecting, QMP
#     "cont" lets the default firmware (Debian's SeaBIOS) run its POST, which
#     programs PCI BARs, shadows the BIOS through PAM and closes SMRAM. With no
#     boot device it then waits. The script polls "info mtree -f" every 0.25 s
#     and sends QMP "stop" once the flat views have not changed for 2 s (and
#     at least 2 s have passed), then captures as above;
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
OUT_DIR=${1:-$REPO_ROOT/memory-tools/src/test/resources/qemu-7.2}
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

# machine-id | binary | Debian package(s) to record | mode | extra arguments
# (word-split). vexpress-a9 gets a silent audio backend only so that the board's
# PL041 does not try the host's ALSA; it does not change the memory map.
Q35_DEVICES="-device e1000 -device virtio-net-pci -device VGA"
MACHINES=(
  "x86_64-pc|qemu-system-x86_64|qemu-system-x86|stopped|-nodefaults -M pc -m 128M"
  "x86_64-q35|qemu-system-x86_64|qemu-system-x86|stopped|-nodefaults -M q35 -m 128M"
  "x86_64-q35-devices|qemu-system-x86_64|qemu-system-x86|stopped|-nodefaults -M q35 -m 128M $Q35_DEVICES"
  "aarch64-virt|qemu-system-aarch64|qemu-system-arm|stopped|-nodefaults -M virt -cpu cortex-a57 -m 128M"
  "arm-vexpress-a9|qemu-system-arm|qemu-system-arm|stopped|-nodefaults -M vexpress-a9 -m 128M -audiodev none,id=snd0 -global pl041.audiodev=snd0"
  "riscv64-virt|qemu-system-riscv64|qemu-system-misc|stopped|-nodefaults -M virt -m 128M"
  "x86_64-pc-seabios|qemu-system-x86_64|qemu-system-x86 seabios ipxe-qemu|firmware|-nodefaults -M pc -m 128M"
  "x86_64-q35-devices-seabios|qemu-system-x86_64|qemu-system-x86 seabios ipxe-qemu|firmware|-nodefaults -M q35 -m 128M $Q35_DEVICES"
)

capture() {
    local id=$1 bin=$2 pkgs=$3 mode=$4 extra=$5
    local dir=$OUT_DIR/$id
    local -a cmd
    # shellcheck disable=SC2206 # the extra arguments are meant to be split
    cmd=("$bin" $extra "${COMMON[@]}")
    mkdir -p "$dir"
    echo "== $id: ${cmd[*]}" >&2

    local qemu_stderr
    qemu_stderr=$(python3 - "$dir" "$mode" "${cmd[@]}" <<'PY'
import json, os, subprocess, sys, threading, time

out_dir, mode, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
CAPTURES = [
    ("info mtree", "mtree.txt"),
    ("info mtree -D", "mtree-D.txt"),
    ("info mtree -f", "mtree-f.txt"),
    ("info mtree -f -d", "mtree-f-d.txt"),
]

proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE)
# Never let a hung QEMU block the script.
watchdog = threading.Timer(90, proc.kill)
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

    def hmp(line):
        return execute("human-monitor-command", {"command-line": line})

    if mode == "firmware":
        execute("cont")
        start = time.monotonic()
        last, last_change = None, start
        while True:
            time.sleep(0.25)
            now = time.monotonic()
            cur = hmp("info mtree -f")
            if cur != last:
                last, last_change = cur, now
            if now - start >= 2 and now - last_change >= 2:
                break
            if now - start > 40:
                sys.exit("memory map did not settle while firmware ran")
        execute("stop")
    elif mode != "stopped":
        sys.exit("unknown mode " + mode)

    for line, fname in CAPTURES:
        text = hmp(line)
        text = text.replace("\r\n", "\n")
        if "\r" in text:
            sys.exit("unexpected lone CR in output of %r" % line)
        if not text.strip():
            sys.exit("empty output from %r" % line)
        with open(os.path.join(out_dir, fname), "w", newline="") as f:
            f.write(text)
    execute("quit")
    proc.wait(timeout=30)
    # Hand QEMU's own messages (warnings) back to the shell for command.txt.
    sys.stdout.write(proc.stderr.read().decode(errors="replace"))
finally:
    watchdog.cancel()
    if proc.poll() is None:
        proc.kill()
        proc.wait()
PY
)

    {
        echo "# command line (run from any directory; QMP on stdio drives it)"
        printf '%q ' "${cmd[@]}" | sed 's/ $//'
        echo
        echo
        echo "# capture mode: $mode"
        if [ "$mode" = firmware ]; then
            echo "# (QMP cont; firmware POST; QMP stop once info mtree -f is stable for 2 s)"
        else
            echo "# (CPUs never started: QMP commands issued while stopped by -S)"
        fi
        echo
        echo "# $bin --version"
        "$bin" --version
        echo
        echo "# dpkg -l $pkgs"
        # shellcheck disable=SC2086 # one word per package
        dpkg -l $pkgs | grep '^ii'
        echo
        echo "# QEMU messages on stderr during the capture"
        if [ -n "$qemu_stderr" ]; then echo "$qemu_stderr"; else echo "(none)"; fi
    } > "$dir/command.txt"
}

for entry in "${MACHINES[@]}"; do
    IFS='|' read -r id bin pkgs mode extra <<< "$entry"
    if [ $# -gt 0 ]; then
        wanted=0
        for w in "$@"; do [ "$w" = "$id" ] && wanted=1; done
        [ $wanted = 1 ] || continue
    fi
    capture "$id" "$bin" "$pkgs" "$mode" "$extra"
done
echo "fixtures written to $OUT_DIR" >&2
