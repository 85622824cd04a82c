#!/bin/sh
# The command built for another system (Windows under wine, say) trains,
# is stopped, resumes, samples and reads back checkpoints exactly as the
# native build does: the same kernels on the same CPU give the same bits,
# so its files must equal the native ones byte for byte, and each build
# must read the other's checkpoint.
# usage: round_trip.sh NATIVE_NANODIFF TARGET_NANODIFF WORKDIR [RUNNER...]
# (RUNNER: how to start a TARGET program, e.g. wine)
set -u
native=$1
target=$2
work=$3
shift 3
rm -rf "$work" && mkdir -p "$work" || exit 1
fail() { echo "round trip FAILED: $*"; exit 1; }
job="--data moons --timesteps 20 --batch 64 --sample-every 0"

"$native" train $job --steps 20 --out "$work/native" >"$work/native.log" 2>&1 ||
  fail "native train: $(cat "$work/native.log")"
# stopped at step 10, with a checkpoint saved over the previous one at 5
"$@" "$target" train $job --steps 10 --checkpoint-every 5 --out "$work/target" \
  >"$work/target.log" 2>&1 || fail "target train: $(cat "$work/target.log")"
"$@" "$target" train --resume --steps 20 --out "$work/target" >>"$work/target.log" 2>&1 ||
  fail "target resume: $(cat "$work/target.log")"
for f in checkpoint.safetensors loss.csv; do
  cmp "$work/native/$f" "$work/target/$f" || fail "$f differs from the native run's"
done

# each samples from the checkpoint the other wrote
"$@" "$target" sample "$work/native" --n 16 --out "$work/target-samples" >/dev/null 2>&1 ||
  fail "target sample"
"$native" sample "$work/target" --n 16 --out "$work/native-samples" >/dev/null 2>&1 ||
  fail "native sample"
for f in samples.npy samples.csv; do
  cmp "$work/native-samples/$f" "$work/target-samples/$f" || fail "$f differs"
done
"$@" "$target" info "$work/native" >"$work/info-target.txt" 2>&1 || fail "target info"
"$native" info "$work/native" >"$work/info-native.txt" 2>&1 || fail "native info"
# (the target may end lines with CRLF on a console)
tr -d '\r' <"$work/info-target.txt" | cmp - "$work/info-native.txt" || fail "info differs"
echo "round trip: train, resume, sample and info give the native bytes"
