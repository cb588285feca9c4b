#!/usr/bin/env bash
# Boots the test guest (see setup.sh) with throw-away writes, runs one script inside it as root
# once the guest has booted, powers off, prints the script's output and exits with its status.
#
# Usage: tests/vm/run.sh SHARE SCRIPT
#   SHARE   a host folder, mounted in the guest at /mnt/host (put binaries and scripts there)
#   SCRIPT  path of the script inside the guest, e.g. /mnt/host/guest/main.sh
#        tests/vm/run.sh --qemu-version   prints the version of the QEMU that boots the guest
# Environment: VM_MEM (MiB, default 2048), VM_TIMEOUT (seconds, default 1500).
# Boot takes ~16 s and power-off ~3 s under software emulation on 2 cores.
set -euo pipefail

die() {
    echo "vm: $*" >&2
    exit 99
}
here=$(cd "$(dirname "$0")" && pwd)
[ $# = 2 ] || [ "${1:-}" = --qemu-version ] ||
    die "usage: $0 SHARE SCRIPT (see the comment at the top of $0)"
# setup.sh prints the guest's folder alone on its standard output and says why when it stops.
vm=$("$here/setup.sh") || die "no guest to boot: tests/vm/setup.sh stopped (its reason is above)"

qemu=(qemu-system-x86_64)
if ! command -v qemu-system-x86_64 >/dev/null; then
    # Unpacked by setup.sh; -L points it at its own firmware and the host's seabios/ipxe.
    qemu=("$vm/qemu/usr/bin/qemu-system-x86_64" -L "$vm/qemu/usr/share/qemu"
        -L /usr/share/seabios -L /usr/lib/ipxe/qemu)
fi
if [ "$1" = --qemu-version ]; then
    "${qemu[@]}" --version | head -1
    exit 0
fi
share=$(cd "$1" && pwd) || die "the share folder $1 does not exist"
script=$2

rm -f "$share/guest.out" "$share/guest.rc"
# /dev/kvm here is a nested variant that cannot run a stock kernel: software emulation (TCG).
status=0
# Ahead of other work on the host (builds), so that the guest's timing checks hold; GNU nice
# only warns when it may not raise the priority.
nice -n -10 timeout "${VM_TIMEOUT:-1500}" "${qemu[@]}" -accel tcg,thread=multi -cpu max -smp "$(nproc)" \
    -m "${VM_MEM:-2048}" -nodefaults -nographic -serial mon:stdio -no-reboot \
    -kernel "$vm/boot/vmlinuz" -initrd "$vm/boot/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0 quiet systemd.unified_cgroup_hierarchy=1 mitigations=off corral.run=$script" \
    -drive "file=$vm/rootfs.img,if=virtio,format=raw,snapshot=on" \
    -virtfs "local,path=$share,mount_tag=host0,security_model=none,id=host0" \
    -device virtio-rng-pci >"$share/console.log" 2>&1 </dev/null || status=$?

if [ ! -f "$share/guest.rc" ]; then
    echo "vm: last console lines:" >&2
    tail -30 "$share/console.log" >&2
    cat "$share/guest.out" 2>/dev/null
    [ "$status" = 124 ] && die "the guest ran out of time (VM_TIMEOUT=${VM_TIMEOUT:-1500} s); its console is in $share/console.log"
    die "the guest did not finish its script (qemu exit $status); its console is in $share/console.log"
fi
cat "$share/guest.out"
exit "$(cat "$share/guest.rc")"
