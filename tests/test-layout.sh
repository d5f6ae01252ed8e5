#!/bin/sh
# The README's source-layout table matches the tree: every path it names
# exists, and every source file is named by it (itself, its .c for a
# header, or its folder when the row names a folder).
top=${srcdir:-.}
readme="$top/README.md"
table=$(sed -n '/^## Source layout/,/^## /p' "$readme" | grep '^| `')
paths=$(printf '%s\n' "$table" | cut -d'|' -f2 | grep -o '`[^`]*`' | tr -d '`')
status=0
for p in $paths; do
    [ -e "$top/$p" ] || { echo "README names $p, which does not exist"; status=1; }
done
for f in $(cd "$top" && ls include/xvdm/*.h src/*/*.[ch] src/*/*.list \
    sim/*.[ch] devices/*/*.[ch] 2>/dev/null); do
    named=0
    for p in $paths; do
        case "$f" in
        "$p" | "${p%.c}.h") named=1 ;;
        */*) case "$p" in */) case "$f" in "$p"*) named=1 ;; esac ;; esac ;;
        esac
    done
    [ "$named" -eq 1 ] || { echo "$f is not in the README's layout table"; status=1; }
done
[ "$status" -eq 0 ] && echo "layout table: every path exists, every source file listed"
exit "$status"
