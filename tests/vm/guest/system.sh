#!/bin/bash
# Corral against the system manager (--system): as root, a service and a scope with limits,
# freeze, a runtime limit change and stop; root with a user's HOME kept (sudo -E) keeps to its
# own files; then as users through polkit (a rule allows testuser and denies corraldenied): what
# of the caller's world reaches a unit that runs as root, a denial that leaves nothing behind,
# and a unit's end that only systemd may announce.
set -u
SUITE=system
SCTL="systemctl"
. "$(dirname "$0")/lib.sh"
here=$(dirname "$0")

# as_user USER COMMAND...: runs a command as USER with a plain login environment, from the
# current folder.
as_user() {
    local user=$1
    shift
    setpriv --reuid="$user" --regid="$(id -g "$user")" --init-groups env -i \
        HOME="$(getent passwd "$user" | cut -d: -f6)" USER="$user" PATH=/usr/local/bin:/usr/bin:/bin "$@"
}

# System units are named after the program they run (polkit's prompt shows the unit's name);
# --name is what Corral shows, and what it finds them by.
echo "== system service"
corral --system run -q --memory-max 64M --tasks-max 16 --name syssleep -- sleep 300
svc=$(wait_unit 'app-corral-sleep-*.service')
expect_in "system unit lives in system.slice" "/system.slice/" "$($SCTL show -p ControlGroup --value "$svc")"
expect_eq "system service memory.max" 67108864 "$(cg "$svc" memory.max)"
expect_eq "system service pids.max" 16 "$(cg "$svc" pids.max)"
expect_in "ps --system lists it" "$svc" "$(corral --system ps)"
check "freeze it" corral --system freeze syssleep
expect_eq "frozen 1" 1 "$(cg_key "$svc" cgroup.events frozen)"
check "thaw it" corral --system thaw syssleep
out=$(corral --system limit syssleep --memory-max 128M 2>&1)
expect_eq "runtime change on the system manager" 134217728 "$(cg "$svc" memory.max)"
check "stop it" corral --system stop syssleep
check "gone" gone "$svc"

echo "== system scope"
out=$(corral --system run --scope --memory-max 32M -- sh -c 'cat /proc/self/cgroup; cat /sys/fs/cgroup$(cut -d: -f3 /proc/self/cgroup)/memory.max' 2>&1)
expect_eq "scope command exits 0" 0 $?
expect_in "the command ran inside the scope, named after it" "app-corral-sh-" "$out"
expect_in "with the limit" "33554432" "$out"

echo "== OOM on the system manager"
out=$(corral --system run --wait --memory-max 40M --memory-swap-max 0 -- tail /dev/zero 2>&1)
expect_eq "OOM-killed system service exits 137" 137 $?
expect_in "and is reported" "OOM killer" "$out"
check "no unit lingers" no_corral_units_left

echo "== root keeps to its own files"
# sudo -E (or a kept HOME) gives root a user's HOME and XDG folders, where the user may have
# left symlinks to root's files: the post-mortem of an OOM kill must go to root's own log, and
# nothing may be written through the user's links.
echo "root's own file" >/etc/corral-victim-log
echo "# root's own file, valid as a config" >/etc/corral-victim-config
cp /etc/corral-victim-log /tmp/victim-log.before
cp /etc/corral-victim-config /tmp/victim-config.before
as_user testuser mkdir -p /home/testuser/.local/state/corral /home/testuser/.config/corral
as_user testuser ln -sfn /etc/corral-victim-log /home/testuser/.local/state/corral/events.jsonl
as_user testuser ln -sfn /etc/corral-victim-config /home/testuser/.config/corral/config.toml
rm -rf /root/.local/state/corral
out=$(HOME=/home/testuser XDG_CONFIG_HOME=/home/testuser/.config XDG_STATE_HOME=/home/testuser/.local/state \
    corral --system run --wait --memory-max 40M --memory-swap-max 0 --name roothog -- tail /dev/zero 2>&1)
expect_eq "the OOM-killed run exits 137" 137 $?
check "root's file behind the user's event-log link is untouched" cmp -s /tmp/victim-log.before /etc/corral-victim-log
check "root's file behind the user's config link is untouched" cmp -s /tmp/victim-config.before /etc/corral-victim-config
expect_in "the post-mortem is in root's own log" "roothog" "$(cat /root/.local/state/corral/events.jsonl 2>&1)"
expect_in "corral events as root reads root's log" "roothog" \
    "$(HOME=/home/testuser XDG_STATE_HOME=/home/testuser/.local/state corral events 2>&1)"
rm -f /home/testuser/.local/state/corral/events.jsonl /home/testuser/.config/corral/config.toml

echo "== polkit: a rule allows testuser and denies corraldenied"
id corraldenied >/dev/null 2>&1 || useradd -m -u 1002 -s /bin/bash corraldenied
mkdir -p /etc/polkit-1/rules.d
cat >/etc/polkit-1/rules.d/10-corral-test.rules <<'JS'
polkit.addRule(function(action, subject) {
    if (action.id == "org.freedesktop.systemd1.manage-units") {
        if (subject.user == "testuser") return polkit.Result.YES;
        if (subject.user == "corraldenied") return polkit.Result.NO;
    }
});
JS
# polkitd reads rules when it starts and again when the folder changes.
allowed() { as_user testuser sh -c 'exec pkcheck --action-id org.freedesktop.systemd1.manage-units --process $$'; }
check "polkit has the test rule (pkcheck allows testuser)" wait_for 30 allowed

echo "== a system unit gets none of the caller's world"
# testuser's own files and variables, as any program of testuser could have set them: a
# program named like a system one first in PATH, a user desktop entry (and one that shadows a
# system entry), the config's environment table, library and module paths.
home=/home/testuser
as_user testuser mkdir -p $home/.local/bin $home/.local/share/applications $home/.config/corral $home/evil
printf '#!/bin/sh\necho HIJACKED\n' >$home/.local/bin/id
chown testuser: $home/.local/bin/id && chmod 755 $home/.local/bin/id
cat >$home/.config/corral/config.toml <<'TOML'
[presets.relaxed]
environment = { INJECTED = "from-the-user-config" }
TOML
chown testuser: $home/.config/corral/config.toml
cat >/usr/share/applications/org.example.SysSleeper.desktop <<'DESKTOP'
[Desktop Entry]
Type=Application
Name=System Sleeper
Exec=sleep 120
DESKTOP
for id in org.example.SysSleeper org.example.UserOnly; do
    cat >$home/.local/share/applications/$id.desktop <<'DESKTOP'
[Desktop Entry]
Type=Application
Name=User Entry
Exec=touch /tmp/user-entry-ran-as-root
DESKTOP
    chown testuser: $home/.local/share/applications/$id.desktop
done
hostile=(LD_LIBRARY_PATH=$home/evil PYTHONPATH=$home/evil GIO_MODULE_DIR=$home/evil GTK_PATH=$home/evil
    GUESTMARK=from-the-caller TERM=xterm-256color PATH=$home/.local/bin:/usr/local/bin:/usr/bin:/bin)
cd $home
out=$(as_user testuser env "${hostile[@]}" corral --system run --wait -q -- id -u 2>/dev/null)
expect_eq "the program is looked up in the system's PATH, not the caller's (~/.local/bin/id)" 0 "$out"
env_out=$(as_user testuser env "${hostile[@]}" corral --system run --wait -q -- env 2>/dev/null)
expect_eq "no variable of the caller reaches the unit (library, module, Python paths, others)" "" \
    "$(echo "$env_out" | grep -E '^(LD_LIBRARY_PATH|PYTHONPATH|GIO_MODULE_DIR|GTK_PATH|GUESTMARK)=')"
expect_eq "nor the user config's environment table" "" "$(echo "$env_out" | grep '^INJECTED=')"
expect_in "TERM, the one variable passed, is" "TERM=xterm-256color" "$env_out"
expect_eq "PATH is systemd's, not the caller's" "" "$(echo "$env_out" | grep '^PATH=.*testuser')"
expect_eq "the unit runs in /, not the caller's folder" "/" \
    "$(as_user testuser corral --system run --wait -q -- pwd 2>/dev/null)"
as_user testuser corral --system run -q --app-id innocent --name named -- sleep 120 >/dev/null 2>&1
expect_in "the unit is named after what it runs, whatever --app-id says" "app-corral-sleep-" \
    "$(wait_unit 'app-corral-*.service')"
check "testuser may stop it" as_user testuser corral --system stop named
out=$(as_user testuser corral --system launch org.example.UserOnly 2>&1)
expect_in "a desktop entry of the user's own is not offered to the system manager" \
    "no installed app has the id" "$out"
as_user testuser corral --system launch org.example.SysSleeper >/dev/null 2>&1
sys_app=$(wait_unit 'app-corral-sleep-*.service')   # named after its program, as any system unit
expect_in "a system entry is not shadowed by the user's" "argv[]=/usr/bin/sleep 120" \
    "$($SCTL show -p ExecStart --value "$sys_app" 2>&1)"
check "nothing of the user's entry ran as root" test ! -e /tmp/user-entry-ran-as-root
$SCTL stop "$sys_app" >/dev/null 2>&1
expect_eq "a scope still runs as the caller (it adopts the caller's own process)" 1001 \
    "$(as_user testuser corral --system run --scope -q -- id -u 2>/dev/null)"
cd /

echo "== polkit says no: a clear error, nothing left behind"
out=$(as_user corraldenied corral --system run -- sleep 100 2>&1)
expect_eq "a denied service launch fails" 1 $?
expect_in "and says polkit refused, and what to do" "polkit rules do not let you manage" "$out"
out=$(as_user corraldenied corral --system run --scope -- sleep 100 2>&1)
expect_eq "a denied scope launch fails" 1 $?
expect_in "and says so too" "polkit rules do not let you manage" "$out"
check "no unit is left behind" no_corral_units_left
expect_eq "no process of the denied user is left behind" "" "$(pgrep -u corraldenied sleep)"

echo "== only systemd may announce that a unit ended"
# Any user may broadcast signals on the system bus: a PropertiesChanged saying "inactive" for
# the unit `corral --system run --wait` waits on must not end the wait.
cp "$here/spoof_end.py" /tmp/spoof_end.py && chmod 755 /tmp/spoof_end.py
started=$(date +%s)
corral --system run --wait -q --name spoofed -- sleep 8 >/tmp/spoofed.out 2>&1 &
waiter=$!
spoofed=$(wait_unit 'app-corral-sleep-*.service')
expect_in "the unit to spoof runs" "app-corral-sleep-" "$spoofed"
as_user testuser python3 /tmp/spoof_end.py "$spoofed" 20
check "corral run --wait is still waiting after 20 false ends from another user" kill -0 $waiter
wait $waiter
expect_eq "and exits when the unit really ends" 0 $?
expect_range "after the command's 8 s" 8 60 $(($(date +%s) - started))

rm -f /etc/polkit-1/rules.d/10-corral-test.rules /usr/share/applications/org.example.SysSleeper.desktop
summary
