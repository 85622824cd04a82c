#!/bin/sh
# The guides docs/adding_an_op.md and docs/adding_a_layer.md are whole
# worked examples. This script applies every code block of theirs to a
# copy of the tree, where its marker says:
#   <!-- guide: FILE new -->             the block is the whole new FILE
#   <!-- guide: FILE after: TEXT -->     inserted after the one line holding TEXT
#   <!-- guide: FILE before: TEXT -->    inserted before that line
# then builds the copy (warnings are errors) and runs the tests the guides
# add, so that a guide whose code no longer fits the library fails here.
# Usage: tests/guides.sh [SOURCE_ROOT]   (needs meson, ninja and Check)
set -eu
root=$(cd "${1:-$(dirname "$0")/..}" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
copy=$work/tree
mkdir "$copy"
(cd "$root" && tar cf - --exclude='./build*' --exclude=./.git .) | (cd "$copy" && tar xf -)

# apply GUIDE: one block at a time, in the order of the page
apply() {
    guide=$1
    awk -v out="$work/block" -v list="$work/blocks" '
        /^<!-- guide: / {
            spec = $0
            sub(/^<!-- guide: /, "", spec)
            sub(/ -->$/, "", spec)
            pending = 1
            next
        }
        pending && /^```/ { inside = 1; pending = 0; n++; file = out "." n
                            print spec > (out "." n ".spec"); printf "" > file; next }
        inside && /^```/ { inside = 0; close(file); print n > list; next }
        inside { print >> file }
    ' "$root/$guide"
    [ -s "$work/blocks" ] || { echo "$guide: no blocks found"; exit 1; }
    while read -r n; do
        spec=$(cat "$work/block.$n.spec")
        file=${spec%% *}
        how=${spec#"$file" }
        case $how in
        new)
            [ ! -e "$copy/$file" ] || { echo "$guide: $file already exists"; exit 1; }
            cp "$work/block.$n" "$copy/$file" ;;
        after:* | before:*)
            where=${how%%:*}
            text=${how#*: }
            [ -f "$copy/$file" ] || { echo "$guide: no file $file"; exit 1; }
            count=$(grep -cF -- "$text" "$copy/$file" || true)
            [ "$count" = 1 ] || {
                echo "$guide: '$text' is on $count lines of $file, not one"; exit 1; }
            awk -v text="$text" -v block="$work/block.$n" -v where="$where" '
                function put(  line) { while ((getline line < block) > 0) print line }
                index($0, text) && where == "before" { put() }
                { print }
                index($0, text) && where == "after" { put() }
            ' "$copy/$file" > "$work/edited"
            cat "$work/edited" > "$copy/$file" ;;
        *)
            echo "$guide: cannot read the marker '$spec'"; exit 1 ;;
        esac
    done < "$work/blocks"
    rm -f "$work"/block.* "$work/blocks"
    echo "$guide: applied"
}
apply docs/adding_an_op.md
apply docs/adding_a_layer.md

meson setup "$work/build" "$copy" -Dbuildtype=debugoptimized -Dwerror=true >"$work/setup.log" 2>&1 ||
    { cat "$work/setup.log"; exit 1; }
ninja -C "$work/build" tests/tensor/test_tensor tests/autograd/test_autograd tests/nn/test_nn \
    >"$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }

# run TEST CASE: the case must pass and must have run at least one check
run() {
    out=$(CK_RUN_CASE=$2 "$work/build/tests/$1" 2>&1) || { echo "$out"; exit 1; }
    case $out in
    *"100%: Checks: 0,"*) echo "$1 $2: no checks ran"; exit 1 ;;
    esac
    echo "$1 $2: $(echo "$out" | tail -n 1)"
}
run tensor/test_tensor elementwise
run tensor/test_tensor errors
run autograd/test_autograd grad_elementwise
run autograd/test_autograd tape
run nn/test_nn layer_norm
echo "the guides' code builds and passes its tests"
