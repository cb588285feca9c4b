#!/bin/sh
# Regenerates po/corral.pot from the files listed in po/POTFILES.in, then merges it into every
# po/LANG.po listed in po/LINGUAS (msgmerge), so that translators see new and changed strings.
#
#   po/update-pot.sh            # template and catalogs
#   po/update-pot.sh --pot FILE # only write the template to FILE (tests/i18n.rs compares it)
#
# Rust is not a language xgettext knows: Rust files are read as C, with the keywords of
# src/i18n.rs. That works because marked strings are plain literals on one line (see there).
# The UI files are read as GtkBuilder files; the desktop entry and metainfo with their ITS rules.
set -eu
cd "$(dirname "$0")/.."

pot=po/corral.pot
merge=yes
case ${1:-} in
    "") ;;
    --pot)
        pot=${2:?--pot needs a file}
        merge=no
        ;;
    *)
        echo "usage: po/update-pot.sh [--pot FILE]" >&2
        exit 2
        ;;
esac

files=$(sed 's/#.*//' po/POTFILES.in | grep -v '^[[:space:]]*$')
for f in $files; do
    [ -f "$f" ] || { echo "po/POTFILES.in lists $f, which does not exist" >&2; exit 1; }
done
rust=$(printf '%s\n' $files | grep '\.rs$' || true)
other=$(printf '%s\n' $files | grep -v '\.rs$' || true)

tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
# The keywords: src/i18n.rs. no-c-format: "70% of RAM" is text, not a printf format.
# shellcheck disable=SC2086 # one file name per word
xgettext --from-code=UTF-8 --language=C --output="$tmp" \
    --package-name=corral --msgid-bugs-address=https://github.com/corral-app/corral/issues \
    --add-comments=TRANSLATORS: --sort-by-file \
    --keyword= --keyword=gettext --keyword=ngettext:1,2 --keyword=pgettext:1c,2 \
    --keyword=gettext_f --keyword=ngettext_f:1,2 --keyword=gettext_noop \
    --flag=gettext:1:no-c-format --flag=ngettext:1:no-c-format --flag=ngettext:2:no-c-format \
    --flag=pgettext:2:no-c-format --flag=gettext_f:1:no-c-format \
    --flag=ngettext_f:1:no-c-format --flag=ngettext_f:2:no-c-format \
    --flag=gettext_noop:1:no-c-format \
    $rust
if [ -n "$other" ]; then
    # shellcheck disable=SC2086
    xgettext --from-code=UTF-8 --join-existing --output="$tmp" --add-comments=TRANSLATORS: \
        --sort-by-file $other
fi
# A stable header: no creation date, so that an unchanged template stays unchanged.
sed -e '/^"POT-Creation-Date: /d' -e 's/^"Content-Type: text\/plain; charset=CHARSET\\n"$/"Content-Type: text\/plain; charset=UTF-8\\n"/' \
    "$tmp" >"$pot"

[ "$merge" = yes ] || exit 0
for lang in $(sed 's/#.*//' po/LINGUAS); do
    msgmerge --quiet --update --backup=none --previous "po/$lang.po" "$pot"
    printf '%s: ' "$lang"
    msgfmt --check --statistics -o /dev/null "po/$lang.po"
done
