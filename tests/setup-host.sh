#!/usr/bin/env bash
# Installs what building and testing Corral needs on a Debian bookworm machine, as root.
# Safe to run again: it only installs what is missing.
set -euo pipefail
# pkg-config, GTK 4 and libadwaita: building; Xvfb and ImageMagick: the window's tests and
# screenshots; dbus-daemon: the private buses of tests/notify.rs; desktop-file-utils, appstream:
# validating resources/; gettext: msgfmt for the catalogs build.rs and install.sh compile,
# xgettext and msgmerge for po/update-pot.sh and tests/i18n.rs;
# status-notifier-watcher, gtk-sni-tray-standalone and xdotool: the real tray host of
# tests/tray_host.rs.
packages=(pkg-config libgtk-4-dev libadwaita-1-dev xvfb xauth dbus-x11 dbus-daemon imagemagick
    desktop-file-utils appstream gettext haskell-status-notifier-item-utils
    haskell-gtk-sni-tray-utils xdotool)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || { echo "run as root to install: ${missing[*]}" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "Rust (cargo) is needed: https://rustup.rs" >&2; exit 1; }
rustup component add rustfmt clippy >/dev/null 2>&1 || true
echo "host ready"
