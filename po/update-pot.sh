#!/bin/sh
# Regenerates po/corral.pot from the files listed in po/POTFILES.in, then merges it into every
# po/LANG.po listed in po/LINGUAS (msgmerge), so that translators see new and changed strings.
#
#   po/update-pot.sh            # template and catalogs
#   po/update-pot.sh --pot FILE # only write the template to FILE (tests/i18n.rs compares it)
#
# Rust is not a language xgettext knows: Rust files are read as C, with the keywords of
# src/i18n.rs. That works because marked strings are plain literals on one line (see there),
# and because copies of the files are read, in which what C cannot lex is made C first:
# lifetimes ('a, 'static), which C would take for unterminated character constants, lose their
# quote; raw strings (r"…", r#"…"#) are emptied; a string that spans lines gets C's line
# splices; attributes (#[error(…)]) lose the # that would make them preprocessor lines to C.
# Line numbers stay as they are, so the references stay right.
# UI files and the AppStream metainfo are read with their ITS rules (gtk4builder, metainfo), the
# desktop entries as such (GenericName, Comment, Keywords; Name and Icon are not translated).
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
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
rust=$(printf '%s\n' $files | grep '\.rs$' || true)
desktop=$(printf '%s\n' $files | grep '\.desktop$' || true)
other=$(printf '%s\n' $files | grep -v '\.rs$' | grep -v '\.desktop$' || true)

tmp=$(mktemp)
copies=$(mktemp -d)
trap 'rm -rf "$tmp" "$copies"' EXIT
for f in $rust; do
    mkdir -p "$copies/$(dirname "$f")"
    perl -0pe '
        s{^([ \t]*)\#(?=!?\[)}{$1 }mg;
        s{ (//[^\n]*) | (/\*.*?\*/) | \br(\#*)"(.*?)"\3 | (b?"(?:[^"\\]|\\.)*")
           | (\x27(?:[^\x27\\\n]|\\.[^\x27]*)\x27) | \x27(?=[A-Za-z_]) }{
            defined $1 ? $1 : defined $2 ? $2
            : defined $4 ? q("") . ("\n" x ($4 =~ tr/\n//))
            : defined $5 ? ($5 =~ s/\n/\\\n/gr)
            : defined $6 ? $6 : " "
        }gsex;
    ' "$f" >"$copies/$f"
done
# xgettext with the template's header and comment options; arguments follow.
xgt() {
    xgettext --from-code=UTF-8 --add-comments=TRANSLATORS: --sort-by-file \
        --package-name=corral --package-version="$version" \
        --msgid-bugs-address=https://github.com/corral-app/corral/issues \
        --copyright-holder="The Corral developers" "$@"
}
# The keywords: src/i18n.rs. no-c-format: "70% of RAM" is text, not a printf format.
# shellcheck disable=SC2086 # one file name per word
(cd "$copies" && xgt --language=C --output="$tmp" \
    --keyword= --keyword=gettext --keyword=ngettext:1,2 --keyword=pgettext:1c,2 \
    --keyword=gettext_f --keyword=ngettext_f:1,2 --keyword=gettext_noop \
    --flag=gettext:1:no-c-format --flag=ngettext:1:no-c-format --flag=ngettext:2:no-c-format \
    --flag=pgettext:2:no-c-format --flag=gettext_f:1:no-c-format \
    --flag=ngettext_f:1:no-c-format --flag=ngettext_f:2:no-c-format \
    --flag=gettext_noop:1:no-c-format \
    $rust)
if [ -n "$other" ]; then
    # shellcheck disable=SC2086
    xgt --join-existing --output="$tmp" $other
fi
if [ -n "$desktop" ]; then
    # shellcheck disable=SC2086
    xgt --join-existing --output="$tmp" --language=Desktop --keyword= --keyword=GenericName \
        --keyword=Comment --keyword=Keywords $desktop
fi
# A stable header: no creation date, so that an unchanged template stays unchanged.
sed -e '1s/.*/# Translatable strings of Corral./' -e '/^"POT-Creation-Date: /d' -e 's/^"Content-Type: text\/plain; charset=CHARSET\\n"$/"Content-Type: text\/plain; charset=UTF-8\\n"/' \
    "$tmp" >"$pot"

[ "$merge" = yes ] || exit 0
for lang in $(sed 's/#.*//' po/LINGUAS); do
    msgmerge --quiet --update --backup=none --previous "po/$lang.po" "$pot"
    printf '%s: ' "$lang"
    msgfmt --check --statistics -o /dev/null "po/$lang.po"
done
