#!/bin/bash
# Guest entry point (runs as root once the guest has booted): installs corral and its window
# (corral-desktop) from the share, then runs the suites named in /mnt/host/suites (default: all
# of them, in order): each user-manager suite as testuser, the system-manager suite as root.
set -u
here=$(dirname "$0")
# Also stream everything to the share, so a host can follow a run as it goes.
exec > >(tee /mnt/host/guest.log) 2>&1
systemctl is-system-running --wait >/dev/null
systemctl is-active --quiet user@1001.service || { echo "testuser's user manager is not running"; exit 1; }
install -m 755 /mnt/host/corral /usr/local/bin/corral
install -D -m 755 /mnt/host/corral-desktop /usr/local/libexec/corral-desktop   # as install.sh puts it
echo '/tmp/core.%p' >/proc/sys/kernel/core_pattern   # a crash leaves a core to debug
mkdir -p /tmp/guest && cp "$here"/*.sh "$here"/*.py /tmp/guest/ && chmod 755 /tmp/guest/*
mkdir -p /mnt/host/screenshots /mnt/host/results && chmod 777 /mnt/host/screenshots /mnt/host/results

as_testuser() {
    setpriv --reuid=1001 --regid=1001 --init-groups env -i HOME=/home/testuser USER=testuser \
        PATH=/usr/local/bin:/usr/bin:/bin XDG_RUNTIME_DIR=/run/user/1001 \
        DBUS_SESSION_BUS_ADDRESS=unix:path=/run/user/1001/bus "$@"
}

suites=$(cat /mnt/host/suites 2>/dev/null || echo "user rules contain gui tray watch faults system")
status=0
for suite in $suites; do
    case $suite in
        user) echo "### user manager (testuser)"; as_testuser bash /tmp/guest/user.sh || status=1 ;;
        gui)
            echo "### window (testuser, Xvfb, AT-SPI)"
            as_testuser bash /tmp/guest/gui.sh || status=1
            for core in /tmp/core.*; do [ -e "$core" ] && cp "$core" /mnt/host/ && echo "kept $core for gdb"; done
            ;;
        watch) echo "### runaway watch (testuser, notification recorder)"; as_testuser bash /tmp/guest/watch.sh || status=1 ;;
        faults)
            # A file system small enough to fill in a moment, for the full-disk section.
            echo "### faults (testuser; a 256 KiB tmpfs at ~testuser/tiny to fill)"
            mkdir -p /home/testuser/tiny
            mount -t tmpfs -o size=256k,uid=1001,gid=1001,mode=0700 tmpfs /home/testuser/tiny
            as_testuser bash /tmp/guest/faults.sh || status=1
            umount /home/testuser/tiny
            ;;
        system) echo "### system manager (root)"; bash /tmp/guest/system.sh || status=1 ;;
        *)
            # Any other suite is a script of that name run as testuser (e.g. faults, tray, bench).
            if [ -f "/tmp/guest/$suite.sh" ]; then
                echo "### $suite (testuser)"; as_testuser bash "/tmp/guest/$suite.sh" || status=1
            else
                echo "no guest suite named $suite"; status=1
            fi
            ;;
    esac
    echo
done
exit $status
