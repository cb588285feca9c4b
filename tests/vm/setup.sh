#!/usr/bin/env bash
# Builds the test guest: Debian bookworm with systemd as PID 1 on pure cgroup v2, and a
# lingering user `testuser` (uid 1001) whose user manager runs at boot. The host machines have
# no systemd and only cgroup v1 controllers, so this guest is where Corral meets a real systemd.
#
# Usage: tests/vm/setup.sh            prints the guest's folder; builds it only when missing
#
# Standard output carries that one line and nothing else (callers capture it); every other
# word, of this script and of the tools it runs, goes to standard error.
#
# The image is cached in $CORRAL_VM_CACHE (default /var/cache/corral-vm), keyed by a hash of
# this script, so only the first run on a machine pays for debootstrap (about 3 minutes).
set -euo pipefail
exec 3>&1 1>&2   # fd 3: the answer; stdout: the log, like stderr

here=$(cd "$(dirname "$0")" && pwd)
cache=${CORRAL_VM_CACHE:-/var/cache/corral-vm}
key=$(sha256sum "$here/setup.sh" | cut -c1-16)
vm=$cache/$key

log() { printf 'vm-setup: %s\n' "$*" >&2; }
die() {
    log "$*"
    exit 1
}
trap 'die "stopped: line $LINENO ($BASH_COMMAND) failed; the half-built guest in $vm.tmp is \
removed on the next run: fix what the lines above say and run tests/vm/setup.sh again"' ERR

if [ -f "$vm/ready" ]; then
    echo "$vm" >&3
    exit 0
fi
[ "$(id -u)" = 0 ] || die "building the guest needs root (debootstrap and apt-get): run sudo $0"
mkdir -p "$cache" 2>/dev/null || die "cannot create the cache folder $cache: set CORRAL_VM_CACHE to a writable folder"

export DEBIAN_FRONTEND=noninteractive
mirror=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
mirror=${mirror:-http://deb.debian.org/debian}

# 1. Host tools. qemu-system-x86 cannot be installed next to the image's backported qemu-utils
#    (it Breaks: qemu-system-common), so its packages are unpacked into the guest folder instead.
log "installing host packages"
apt-get update -qq
apt-get install -y -qq --no-install-recommends debootstrap e2fsprogs seabios ipxe-qemu \
    libbrlapi0.8 libcacard0 libcapstone4 libfdt1 libibverbs1 libpmem1 librdmacm1 libslirp0 \
    libsndio7.0 libspice-server1 libusb-1.0-0 libusbredirparser1 libvdeplug2 >/dev/null

rm -rf "$vm.tmp"
mkdir -p "$vm.tmp/debs" "$vm.tmp/qemu"
chown _apt "$vm.tmp/debs" 2>/dev/null || true   # apt-get download fetches as _apt
if ! command -v qemu-system-x86_64 >/dev/null; then
    (cd "$vm.tmp/debs" && apt-get download -qq qemu-system-x86 qemu-system-common qemu-system-data)
    for deb in "$vm.tmp"/debs/*.deb; do dpkg-deb -x "$deb" "$vm.tmp/qemu"; done
fi
rm -rf "$vm.tmp/debs"

# 2. Guest root file system. Binaries built on the host run in it unchanged (same glibc).
log "debootstrapping the guest (about 3 minutes)"
root=$vm.tmp/rootfs
# Beyond systemd: the GTK 4 / libadwaita runtime the window links, Xvfb and xwd for screenshots,
# AT-SPI and pyatspi to drive the window as a screen reader would, and a real tray host
# (status-notifier-watcher, gtk-sni-tray-standalone) for the tray tests; polkitd, which decides
# whether a user may manage the system manager's units (the system suite's polkit rules).
guest_packages=systemd,systemd-sysv,dbus,dbus-user-session,libpam-systemd,procps,util-linux,polkitd
guest_packages+=,linux-image-amd64,initramfs-tools,e2fsprogs
guest_packages+=,libgtk-4-1,libadwaita-1-0,adwaita-icon-theme,hicolor-icon-theme,fonts-cantarell
guest_packages+=,xvfb,xauth,x11-apps,dbus-x11,at-spi2-core,python3-pyatspi,gir1.2-atspi-2.0,python3-gi
guest_packages+=,haskell-gtk-sni-tray-utils,haskell-status-notifier-item-utils
debootstrap --variant=minbase --include="$guest_packages" \
    bookworm "$root" "$mirror" >"$vm.tmp/debootstrap.log" 2>&1 || {
    tail -20 "$vm.tmp/debootstrap.log" >&2
    die "debootstrap failed (its log is above and in $vm.tmp/debootstrap.log): check that $mirror is reachable"
}

# 3. Guest configuration: root auto-login on the console, testuser lingering (so user@1001
#    starts at boot), the host's test folder on 9p at /mnt/host, and a unit that runs the
#    script named on the kernel command line (corral.run=PATH) and powers off.
echo corral-vm >"$root/etc/hostname"
chroot "$root" passwd -d root >/dev/null
chroot "$root" useradd -m -u 1001 -s /bin/bash testuser
mkdir -p "$root/var/lib/systemd/linger" "$root/mnt/host"
touch "$root/var/lib/systemd/linger/testuser"
# The 9p transport must be loaded before the share is mounted, or the mount races module
# loading and the guest boots into emergency mode ("no channels available for device host0").
printf '/dev/vda / ext4 rw,noatime 0 1\nhost0 /mnt/host 9p trans=virtio,version=9p2000.L,msize=262144,x-systemd.requires=systemd-modules-load.service 0 0\n' \
    >"$root/etc/fstab"
printf '9p\n9pnet_virtio\n' >"$root/etc/modules-load.d/9p.conf"
cat >"$root/etc/systemd/system/corral-test.service" <<'EOF'
[Unit]
Description=Run the script named by corral.run= on the kernel command line, then power off
ConditionKernelCommandLine=corral.run
After=mnt-host.mount multi-user.target
Requires=mnt-host.mount
[Service]
Type=simple
StandardOutput=file:/run/corral-test.out
StandardError=inherit
ExecStart=/bin/sh -c 'S=$(sed -n "s/.*corral\\.run=\\([^ ]*\\).*/\\1/p" /proc/cmdline); "$S"; echo $? > /run/corral-test.rc'
ExecStopPost=/bin/sh -c 'cp /run/corral-test.out /mnt/host/guest.out; cp /run/corral-test.rc /mnt/host/guest.rc; sync'
ExecStopPost=/bin/systemctl --no-block poweroff
[Install]
WantedBy=multi-user.target
EOF
ln -sf /etc/systemd/system/corral-test.service "$root/etc/systemd/system/multi-user.target.wants/"
ln -sf /dev/null "$root/etc/systemd/system/systemd-firstboot.service"
: >"$root/etc/machine-id"
# A small initramfs boots ~2 s faster under emulation.
sed -i 's/^MODULES=.*/MODULES=list/' "$root/etc/initramfs-tools/initramfs.conf"
printf 'virtio_pci\nvirtio_blk\next4\n9pnet_virtio\n9p\n' >>"$root/etc/initramfs-tools/modules"
mount --bind /proc "$root/proc"
chroot "$root" update-initramfs -u -k all >/dev/null 2>&1 ||
    { umount "$root/proc"; die "update-initramfs failed in the guest's root folder $root"; }
umount "$root/proc"

# 4. Disk image, made from the folder (no loop device needed). Kernel and initrd stay outside.
mkdir -p "$vm.tmp/boot"
cp "$root"/boot/vmlinuz-* "$vm.tmp/boot/vmlinuz"
cp "$root"/boot/initrd.img-* "$vm.tmp/boot/initrd.img"
mkfs.ext4 -q -L root -d "$root" "$vm.tmp/rootfs.img" 3G
rm -rf "$root"
touch "$vm.tmp/ready"
rm -rf "$vm" && mv "$vm.tmp" "$vm"
log "guest ready in $vm"
echo "$vm" >&3
