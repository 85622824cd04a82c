#!/bin/sh
# A checkpoint written here loads on another target and gives the samples
# docs/PORTABILITY.md promises: the same bits where the two builds run
# kernels of the same family, else values within the stated tolerance.
#
#   tests/cross_target.sh NATIVE_BUILD TARGET_BUILD [RUNNER...]
#
# NATIVE_BUILD: a meson build of nanodiff for this machine (x86-64 in CI).
# TARGET_BUILD: a build for another target; its programs are run as
# "RUNNER... TARGET_BUILD/nanodiff ..." (nanodiff.exe if that is what the
# build has), e.g. with qemu-s390x -L / or wine as the RUNNER (and
# none for a second build of this machine).
#
# Natively: train a small model (the checkpoint every comparison starts
# from) with the machine's kernels and again with the scalar ones, and
# sample from the first checkpoint with both kernel sets. On the target:
# train the same model, and sample from the native checkpoint with the
# target's kernels and with the scalar ones. Then compare, with
# cross-compare (tests/cross_compare.c, built here against NATIVE_BUILD's
# library):
#   - the target's training with the native training of the same kernel
#     family: the same bytes (cmp);
#   - the target's scalar samples with the native scalar samples: the same
#     bits;
#   - the target's samples with its own kernels with the native samples
#     of the same family: the same bits, or, when no native build has that
#     family, within the tolerance below.
# The kernel families: "scalar" (the plain-C twins: i686, s390x, riscv64,
# any x86-64 without AVX2) and "fma" (AVX2 on x86-64, NEON on aarch64,
# which run the same algorithms with their FMAs in the same places).
# Exits non-zero on the first comparison that fails.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 NATIVE_BUILD TARGET_BUILD [RUNNER...]" >&2
    exit 2
fi
native=$(cd "$1" && pwd)
target=$(cd "$2" && pwd)
shift 2
repo=$(cd "$(dirname "$0")/.." && pwd)
name=$(basename "$target")
program=$target/nanodiff
[ -e "$program" ] || program=$target/nanodiff.exe # a Windows build, under wine

# Samples of the two kernel families differ by rounding alone: in this
# setup by at most a few ulps of values of order 1 (docs/PORTABILITY.md
# gives the measured figures). 1e-5 is a hundred times that and still far
# below what a misread file or a wrong kernel would give (differences of
# order 0.1).
tolerance=1e-5

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The comparison program, against the native build's shared library.
"${CC:-cc}" -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -I"$repo" \
    "$repo/tests/cross_compare.c" -L"$native" -Wl,-rpath,"$native" -lnanodiff -lm -pthread \
    -o "$work/cross-compare"

# A short run: 20 steps of the MLP on two moons, T = 20; the preview at the
# end over two steps (the fewest it takes), short under an emulator. (Both
# lists are split into words where they are used.)
job="--data moons --timesteps 20 --steps 20 --batch 64 --sample-every 0 --preview-steps 2"
draw="--n 256 --chain 0"

# kernels LOG: the kernel set a `nanodiff train` used, from its output
kernels() {
    sed -n 's/.*kernels \([a-z0-9]*\)).*/\1/p' "$1" | head -n 1
}
family() {
    case $1 in
        scalar) echo scalar ;;
        avx2 | neon) echo fma ;;
        *) echo "$1" ;;
    esac
}

fail() {
    echo "$name: FAILED: $*"
    exit 1
}

run() { # LOG [ENV=...] COMMAND...: runs it (through env), its output into LOG
    log=$1
    shift
    if ! env "$@" >"$log" 2>&1; then
        cat "$log"
        fail "$*"
    fi
}

echo "== $name: native training and sampling"
run "$work/native.log" "$native/nanodiff" train $job --out "$work/native"
run "$work/native-scalar.log" ND_KERNELS=scalar "$native/nanodiff" train $job \
    --out "$work/native-scalar"
native_kernels=$(kernels "$work/native.log")
ckpt=$work/native/checkpoint.safetensors
run "$work/s1.log" "$native/nanodiff" sample "$ckpt" $draw --out "$work/sample-native"
run "$work/s2.log" ND_KERNELS=scalar "$native/nanodiff" sample "$ckpt" $draw \
    --out "$work/sample-native-scalar"

echo "== $name: the same on the target (${*:-run directly})"
run "$work/target.log" "$@" "$program" train $job --threads 1 --out "$work/target"
target_kernels=$(kernels "$work/target.log")
if [ -z "$native_kernels" ] || [ -z "$target_kernels" ]; then
    fail "no kernel set named in the training output"
fi
run "$work/s3.log" "$@" "$program" sample "$ckpt" $draw --threads 1 \
    --out "$work/sample-target"
if [ "$target_kernels" != scalar ]; then
    run "$work/s4.log" ND_KERNELS=scalar "$@" "$program" sample "$ckpt" $draw \
        --threads 1 --out "$work/sample-target-scalar"
else
    cp -r "$work/sample-target" "$work/sample-target-scalar"
fi

compare() { # WHAT A B [OPTIONS]
    what=$1 a=$2 b=$3
    shift 3
    if out=$("$work/cross-compare" "$@" "$a" "$b"); then
        echo "$name: $what: $(printf '%s\n' "$out" | tail -n 1)"
    else
        printf '%s\n' "$out"
        fail "$what"
    fi
}

echo "== $name: kernels $native_kernels here, $target_kernels there"
nf=$(family "$native_kernels")
tf=$(family "$target_kernels")
# training: the bytes of the checkpoint of the same family
if [ "$tf" = scalar ]; then same=$work/native-scalar; else same=$work/native; fi
if [ "$tf" = scalar ] || [ "$tf" = "$nf" ]; then
    if ! cmp "$same/checkpoint.safetensors" "$work/target/checkpoint.safetensors"; then
        "$work/cross-compare" "$same/checkpoint.safetensors" \
            "$work/target/checkpoint.safetensors" | tail -n 1 || true
        fail "training ($target_kernels) is not the same bytes as here"
    fi
    echo "$name: training ($target_kernels): the same bytes as here"
else
    echo "$name: training ($target_kernels): no build here of that family to compare with"
fi
# sampling from the native checkpoint
compare "samples, scalar kernels" "$work/sample-native-scalar/samples.npy" \
    "$work/sample-target-scalar/samples.npy"
if [ "$tf" = "$nf" ]; then
    compare "samples, $target_kernels kernels (same family as $native_kernels)" \
        "$work/sample-native/samples.npy" "$work/sample-target/samples.npy"
else
    compare "samples, $target_kernels kernels against $native_kernels (tolerance $tolerance)" \
        "$work/sample-native/samples.npy" "$work/sample-target/samples.npy" --abs "$tolerance"
fi
echo "$name: a checkpoint written here gives the same samples there"
