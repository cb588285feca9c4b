#!/bin/bash
# Rules that hold however an app is started (issue 13) and the budget of all apps (issue 14),
# against testuser's real user manager: `corral rules set` writes drop-ins that systemd applies
# to units started by others (GNOME, Flatpak and KDE names, an id with a dash), with no Corral
# process running; running instances get a rule at once; removing it removes exactly Corral's
# files; a limit changed while an app runs survives another rule's reload; policies act only
# where a rule asks; a running Corral follows a hand edit. Run as testuser.
set -u
SUITE=rules
SCTL="systemctl --user"
. "$(dirname "$0")/lib.sh"

cd "$HOME"
work=$(mktemp -d -p "$HOME" rules.XXXXXX)
config=~/.config/corral/config.toml
units=~/.config/systemd/user
mkdir -p ~/.config/corral
[ -f "$config" ] && cp "$config" "$work/config.saved"
cat >"$config" <<'TOML'
# Rules for the guest tests.
[presets.freezer]
description = "Freezes an app near its limit"
on-memory-near-limit = "freeze"
TOML

pids=()
started=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${started[@]}"; do $SCTL stop "$p" 2>/dev/null; done
    corral rules remove com.example.my-app >/dev/null 2>&1
    corral rules remove org.example.Viewer >/dev/null 2>&1
    corral rules remove org.example.Other >/dev/null 2>&1
    corral rules remove hogapp >/dev/null 2>&1
    corral budget --memory-high max --memory-max max >/dev/null 2>&1
    if [ -f "$work/config.saved" ]; then cp "$work/config.saved" "$config"; else rm -f "$config"; fi
}
trap cleanup EXIT


# scope NAME: starts `sleep` in a transient scope of that exact name, as a launcher would.
scope() {
    systemd-run --user --scope -q --unit="$1" sleep 600 &
    pids+=($!)
    started+=("$1")
    wait_for 10 test "$(active_state "$1")" = active
}

# service NAME: the same as a service (KDE's app-ID@RANDOM.service).
service() {
    systemd-run --user -q --unit="$1" sleep 600
    started+=("$1")
    wait_for 10 test "$(active_state "$1")" = active
}

no_corral_running() { ! pgrep -u "$(id -u)" -x corral >/dev/null; }

id='com.example.my-app'
esc='com.example.my\x2dapp'

echo "== a rule set earlier limits apps others start, with no Corral running"
out=$(corral rules set "$id" --memory-max 100M --cpu-quota 20% 2>&1)
check "corral rules set succeeds" test $? -eq 0
expect_in "it says the app is not installed, and that the rule applies anyway" "no installed app" "$out"
expect_in "it wrote the drop-ins" "Wrote 10 drop-ins" "$out"
head=$(head -1 "$units/app-gnome-$esc-.scope.d/40-corral.conf" 2>&1)
expect_in "each file says Corral wrote it from config.toml" "Corral wrote this file" "$head"
expect_in "… and from which rule" "$id" "$(head -2 "$units/app-gnome-$esc-.scope.d/40-corral.conf")"
check "no corral process runs" no_corral_running
scope "app-gnome-$esc-1234.scope"
scope "app-flatpak-$esc-5151.scope"
service "app-$esc@a1b2.service"
scope "app-kde-$esc-77.scope"
for u in "app-gnome-$esc-1234.scope" "app-flatpak-$esc-5151.scope" "app-$esc@a1b2.service" \
    "app-kde-$esc-77.scope"; do
    expect_eq "$u: memory.max from the rule" 104857600 "$(cg "$u" memory.max)"
    expect_eq "$u: cpu.max from the rule" "20000 100000" "$(cg "$u" cpu.max)"
done
scope "app-gnome-com.example.my-9.scope"
expect_eq "an id that only starts the same gets nothing (the dash is escaped)" max \
    "$(cg "app-gnome-com.example.my-9.scope" memory.max)"

echo "== an instance running before the rule gets it at once"
viewer='org.example.Viewer'
scope "app-gnome-$viewer-4242.scope"
expect_eq "no limit before the rule" max "$(cg "app-gnome-$viewer-4242.scope" memory.max)"
out=$(corral rules set "$viewer" --memory-max 80M 2>&1)
expect_eq "memory.max at once" 83886080 "$(cg "app-gnome-$viewer-4242.scope" memory.max)"
expect_in "the CLI names the running instance" "app-gnome-$viewer-4242.scope" "$out"
expect_in "… and what took" "memory max 80M: applied" "$out"
list=$(corral rules 2>&1)
expect_in "corral rules lists the rule" "$viewer" "$list"
expect_in "… the unit names it covers" "app-{,gnome-,kde-,flatpak-}$viewer{@*.service,-*.scope}" "$list"
expect_in "… and its running instance" "app-gnome-$viewer-4242.scope" "$list"
json=$(corral rules --json)
expect_eq "corral rules --json lists both rules with their patterns" "2 10" \
    "$(echo "$json" | python3 -c 'import json,sys; r=json.load(sys.stdin); print(len(r), len(r[0]["patterns"]))')"

echo "== a limit changed while an app runs survives another rule's reload"
corral limit "app-gnome-$viewer-4242.scope" --memory-max 150M >/dev/null 2>&1
expect_eq "corral limit changed it" 157286400 "$(cg "app-gnome-$viewer-4242.scope" memory.max)"
out=$(corral rules set org.example.Other --memory-max 50M 2>&1)
expect_in "the other rule's change reloaded systemd" "systemd reloaded" "$out"
expect_eq "the runtime change stands after the reload" 157286400 "$(cg "app-gnome-$viewer-4242.scope" memory.max)"
out=$(corral rules set "$viewer" --memory-max 90M 2>&1)
expect_eq "… even after a change of its own rule" 157286400 "$(cg "app-gnome-$viewer-4242.scope" memory.max)"
expect_in "… and the CLI says why it did not take" "changed while the app ran" "$out"

echo "== a launch asked for other limits than its rule keeps them"
corral run -q --app-id "$viewer" --memory-max 200M -- sleep 600
own=$(wait_unit "app-corral-org.example.Viewer-*.service")
started+=("$own")
expect_eq "the launch's 200M beats the rule's drop-in" 209715200 "$(cg "$own" memory.max)"

echo "== removing a rule removes exactly Corral's files"
printf '[Scope]\nCPUWeight=42\n' >"$units/app-gnome-$esc-.scope.d/override.conf"
cp "$units/app-gnome-$esc-.scope.d/override.conf" "$work/override.before"
out=$(corral rules remove "$id" 2>&1)
expect_in "it removed the drop-ins" "Removed 10 drop-ins" "$out"
check "the hand-written drop-in stays, byte for byte" \
    cmp "$work/override.before" "$units/app-gnome-$esc-.scope.d/override.conf"
check "Corral's file in that folder is gone" test ! -e "$units/app-gnome-$esc-.scope.d/40-corral.conf"
check "the folders Corral created are gone" test ! -e "$units/app-flatpak-$esc-.scope.d"
left=$(find "$units" -name 40-corral.conf -path "*$esc*" | wc -l)
expect_eq "none of Corral's files for the rule is left" 0 "$left"
scope "app-gnome-$esc-5678.scope"
expect_eq "a new instance starts without the rule" max "$(cg "app-gnome-$esc-5678.scope" memory.max)"
expect_eq "… and with the person's own drop-in" 42 "$(cg "app-gnome-$esc-5678.scope" cpu.weight)"
rm -f "$units/app-gnome-$esc-.scope.d/override.conf"

echo "== bad input changes nothing"
before=$(cat "$config")
out=$(corral rules set "$viewer" --memory-max 12Q 2>&1)
check "a bad size is refused" test $? -ne 0
expect_in "… with corral run's words" "not a valid" "$out"
out=$(corral rules set "$viewer" -p nosuch 2>&1)
expect_in "an unknown preset is named" "nosuch" "$out"
expect_eq "the config is unchanged" "$before" "$(cat "$config")"

echo "== a running Corral follows a hand edit"
corral watch >"$work/watch.out" 2>"$work/watch.err" &
pids+=($!)
check "corral watch starts" wait_for 10 grep -q watching "$work/watch.err"
printf '\n[apps."org.example.Hand"]\nmemory-max = "70M"\n' >>"$config"
check "the running Corral writes the new rule's drop-ins" \
    wait_for 15 test -e "$units/app-gnome-org.example.Hand-.scope.d/40-corral.conf"
scope "app-gnome-org.example.Hand-1.scope"
expect_eq "a new instance gets it" 73400320 "$(cg "app-gnome-org.example.Hand-1.scope" memory.max)"
printf 'this is = = not toml\n' >>"$config"
sleep 2
check "a config with a mistake changes no drop-in" \
    test -e "$units/app-gnome-org.example.Hand-.scope.d/40-corral.conf"
expect_in "… and the mistake is reported with its line" "config.toml:" "$(cat "$work/watch.err")"
sed -i '/this is = = not toml/d; /org.example.Hand/d; /memory-max = "70M"/d' "$config"
check "fixed, the rule's removal removes its drop-ins" \
    wait_for 15 test ! -e "$units/app-gnome-org.example.Hand-.scope.d/40-corral.conf"

echo "== policies act only where a rule asks"
# The freezer preset freezes near the limit; a GNOME app without a rule must only be warned.
cat >>"$config" <<'TOML'

[presets.relaxed]
on-memory-near-limit = "freeze"
TOML
sleep 2  # the watcher takes the config at its next tick
systemd-run --user --scope -q --unit=app-gnome-norule-1.scope -p MemoryMax=64M -p MemorySwapMax=0 \
    python3 /tmp/guest/hog.py hold 92 "$work/norule.crossed" &
pids+=($!)
started+=(app-gnome-norule-1.scope)
check "the hog without a rule crosses 90 %" wait_for 30 test -s "$work/norule.crossed"
check "corral watch warns about it" wait_for 10 grep -q app-gnome-norule-1.scope "$work/watch.out"
sleep 2
expect_eq "a preset's freeze policy never freezes an app without a rule" 0 \
    "$(cg_key app-gnome-norule-1.scope cgroup.events frozen)"
corral rules set hogapp -p freezer --memory-max 64M >/dev/null 2>&1
systemd-run --user --scope -q --unit=app-gnome-hogapp-1.scope -p MemorySwapMax=0 \
    python3 /tmp/guest/hog.py hold 92 "$work/hogapp.crossed" &
pids+=($!)
started+=(app-gnome-hogapp-1.scope)
check "the hog with a rule crosses 90 %" wait_for 30 test -s "$work/hogapp.crossed"
check "a rule that names the freezing preset has it frozen" \
    wait_for 10 test "$(cg_key app-gnome-hogapp-1.scope cgroup.events frozen)" = 1
$SCTL thaw app-gnome-hogapp-1.scope 2>/dev/null
$SCTL stop app-gnome-hogapp-1.scope app-gnome-norule-1.scope 2>/dev/null

echo "== the budget of all apps"
slice_cg="/sys/fs/cgroup$($SCTL show -p ControlGroup --value app.slice)"
total=$(mem_total)
out=$(corral budget --memory-high 80% 2>&1)
check "corral budget --memory-high 80% succeeds" test $? -eq 0
high=$(cat "$slice_cg/memory.high")
expect_range "app.slice memory.high is 80 % of RAM at once (permille)" 795 805 $((high * 1000 / total))
expect_in "it says so" "80%" "$out"
$SCTL daemon-reload
high=$(cat "$slice_cg/memory.high")
expect_range "… and after a reload" 795 805 $((high * 1000 / total))
check "the drop-in is app.slice.d/40-corral.conf" test -e "$units/app.slice.d/40-corral.conf"
expect_in "corral budget shows the apps' use" "In use now" "$(corral budget 2>&1)"
corral budget --memory-high max >/dev/null 2>&1
expect_eq "--memory-high max takes it away" max "$(cat "$slice_cg/memory.high")"
check "… and removes Corral's file" test ! -e "$units/app.slice.d/40-corral.conf"

summary
