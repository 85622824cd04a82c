#!/bin/sh
# The shared library exports the public API (nd_...) and none of the nd__
# internals its files share (nanodiff.ver hides them). Exit 77 (meson's
# "skipped") without nm, for a static library, or when the linker took no
# version script. Usage: symbols.sh NM LIBRARY hidden|not-hidden
set -u
nm=$1 lib=$2 hidden=$3
if [ -z "$nm" ]; then
    echo "no nm: skipped"
    exit 77
fi
case $lib in
*.so | *.so.*) ;;
*) echo "$lib is not a shared library: skipped"; exit 77 ;;
esac
if [ "$hidden" != hidden ]; then
    echo "the linker takes no version script, so the internals stay exported: skipped"
    exit 77
fi
if ! symbols=$("$nm" -D --defined-only "$lib"); then
    echo "$nm cannot read $lib: skipped"
    exit 77
fi
names=$(printf '%s\n' "$symbols" | awk 'NF >= 3 { print $3 }')
public=$(printf '%s\n' "$names" | grep -c '^nd_[a-zA-Z0-9]')
internal=$(printf '%s\n' "$names" | grep '^nd__')
echo "$lib exports $public nd_ functions and data"
if [ -n "$internal" ]; then
    echo "it also exports these internals:"
    printf '%s\n' "$internal"
    exit 1
fi
if [ "$public" -eq 0 ]; then
    echo "it exports no nd_ symbol at all"
    exit 1
fi
