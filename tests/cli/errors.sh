#!/bin/sh
# Every bad input gives one clear message and a non-zero exit, never a
# crash, and nothing on disk is lost.
# usage: errors.sh NANODIFF WORKDIR
set -u
nanodiff=$1
work=$2/errors
rm -rf "$work" && mkdir -p "$work" || exit 1
n=0
fail() { echo "FAIL: $*"; exit 1; }

# expect STATUS PATTERN ARGS...: nanodiff ARGS exits with STATUS and its
# error output (one line, naming the problem) matches PATTERN.
expect() {
  want=$1 pattern=$2
  shift 2
  "$nanodiff" "$@" >"$work/out" 2>"$work/err"
  rc=$?
  n=$((n + 1))
  [ $rc -eq "$want" ] || fail "nanodiff $*: exit status $rc, not $want ($(cat "$work/err"))"
  grep -q -- "$pattern" "$work/err" || fail "nanodiff $*: '$(cat "$work/err")' lacks '$pattern'"
}

# arguments
expect 2 "unknown command 'bogus'" bogus
expect 2 "unknown option '--bogus'" train --bogus --out "$work/x"
expect 2 "steps: '12x' is not a whole number" train --steps 12x --out "$work/x"
expect 2 "steps: 0 is outside" train --steps 0 --out "$work/x"
expect 2 "steps: '+5' is not a whole number" train --steps +5 --out "$work/x"
expect 2 "steps: ' 5' is not a whole number" train --steps " 5" --out "$work/x"
expect 2 "steps: '007' is not a whole number" train --steps 007 --out "$work/x"
expect 2 "lr: 'fast' is not a number" train --lr fast --out "$work/x"
expect 2 "lr: 'nan' is not a number" train --lr nan --out "$work/x"
expect 2 "model: 'cnn' is not one of mlp|unet" train --model cnn --out "$work/x"
expect 2 "out DIR is required" train --steps 10
expect 2 "steps is given twice" train --steps 10 --steps 20 --out "$work/x"
expect 2 "batch needs a value" train --out "$work/x" --batch
expect 2 "resume takes no value" train --resume=yes --out "$work/x"
expect 1 "ch-mult: '1,,2' is not a list" train --data shapes --ch-mult 1,,2 --out "$work/x"
expect 2 "which run" sample
expect 2 "unexpected 'b'" sample a b
expect 2 "t: 1001 is outside" forward --t 1,1001
expect 2 "which checkpoint" info
[ -e "$work/x" ] && fail "a refused command made its --out folder"

# data and models that do not fit
expect 1 "not a data set" train --data nowhere --out "$work/x"
expect 1 "use --model mlp for points" train --data moons --model unet --out "$work/x"
expect 1 "use --model unet for images" train --data shapes --model mlp --out "$work/x"
expect 1 "mnist needs --data-dir" train --data mnist --out "$work/x"
expect 1 "cifar10 needs --data-dir" train --data cifar10 --out "$work/x"
printf 'x,y\n1,2\n3,oops\n' >"$work/bad.csv"
expect 1 "line 3" train --data "$work/bad.csv" --out "$work/x"
expect 1 "emb 7 is not even" train --emb 7 --out "$work/x"
expect 1 "does not halve evenly 6 times" train --data shapes --ch-mult 1,1,1,1,1,1,1 --out "$work/x"
expect 1 "is a file, not a folder" train --steps 1 --out "$work/bad.csv"

# a run, then what must not happen to it
small="--timesteps 20 --steps 4 --batch 8 --sample-every 0"
"$nanodiff" train $small --out "$work/run" >/dev/null 2>&1 || fail "a small run failed"
cp "$work/run/checkpoint.safetensors" "$work/keep"
expect 1 "already holds a run" train $small --out "$work/run"
expect 2 "cannot change a run being resumed" train --resume --lr 1 --out "$work/run"
expect 1 "has done 4 of 4 steps" train --resume --out "$work/run"
expect 1 "no checkpoint to resume from" train --resume --out "$work/empty"
expect 2 "steps 1: use 2..20" sample "$work/run" --steps 1
cmp -s "$work/keep" "$work/run/checkpoint.safetensors" || fail "a refused command changed the checkpoint"
expect 1 "prefix\|No such file\|cannot" sample "$work/run" --out "$work/bad.csv/inside"
expect 1 "a model of points: bits per dimension are for 8-bit images" eval "$work/run"
expect 2 "t: 21 is outside" field "$work/run" --t 21
expect 1 "a model of points; interpolation is shown on images" interpolate "$work/run"
expect 1 "a model of points; encode is shown on images" encode "$work/run"
expect 2 "need a class-conditional model" sample "$work/run" --class 1
expect 2 "eta is DDIM's" sample "$work/run" --eta 0.5
expect 1 "class conditioning is for the UNet" train --classes --out "$work/x"
expect 2 "t-samples 1: an estimate needs L_0" eval "$work/run" --t-samples 1

# the feature classifier and scores
expect 1 "a classifier needs labelled images (these are points)" classifier --data moons
expect 2 "width 12: a multiple of 8" classifier --data shapes --width 12
expect 2 "give SAMPLES" score
expect 2 "give no SAMPLES" score --floor --data shapes "$work/run"
expect 2 "floor needs --data SET" score --floor
expect 1 "say which data set the samples are of with --data" score "$work/none.npy"
expect 1 "none.npy" score "$work/none.npy" --data moons
expect 1 "no classifier at shapes-classifier.safetensors: make one with" score --floor --data shapes
expect 1 "is not a nanodiff classifier" score --floor --data shapes --classifier "$work/keep"
expect 1 "floor is for images" score --floor --data moons
"$nanodiff" sample "$work/run" --n 5 --chain 0 --prefix pts >/dev/null 2>&1 || fail "sampling"
expect 1 "holds images; the samples are not N x C x H x W" score "$work/run/pts.npy" --data shapes
"$nanodiff" classifier --data shapes --width 8 --steps 1 --out "$work/cls.safetensors" \
  >/dev/null 2>&1 || fail "a one-step classifier failed"
"$nanodiff" train --data shapes --ch 8 --ch-mult 1,2 --blocks 1 --attn none --timesteps 20 \
  --steps 1 --batch 2 --sample-every 0 --preview-steps 5 --out "$work/img" >/dev/null 2>&1 ||
  fail "an image run failed"
"$nanodiff" sample "$work/img" --n 2 --chain 0 --steps 2 >/dev/null 2>&1 || fail "image samples"
expect 2 "steps: 1 is outside" encode "$work/img" --steps 1,10
expect 1 "moons" encode "$work/img" --data moons
expect 1 "moons holds points in 2 dimensions; the samples are not N x 2" \
  score "$work/img/samples.npy" --data moons
expect 1 "pts.npy: its samples are not of the first file's shape" \
  score "$work/img/samples.npy" "$work/run/pts.npy" --data shapes
expect 1 "n 3: there are 2 samples" score "$work/img/samples.npy" --data shapes --n 3
expect 1 "cls.safetensors was trained on shapes (32x32 images), not on fashion" \
  score "$work/img" --data fashion-mnist --classifier "$work/cls.safetensors"

# damaged checkpoints: truncated, garbage, settings edited by hand
size=$(wc -c <"$work/keep")
head -c $((size / 2)) "$work/keep" >"$work/half.safetensors"
expect 1 "half.safetensors" info "$work/half.safetensors"
expect 1 "half.safetensors" sample "$work/half.safetensors"
printf 'not a checkpoint at all' >"$work/junk.safetensors"
expect 1 "junk.safetensors" info "$work/junk.safetensors"
expect 1 "missing.safetensors: No such file" info "$work/missing.safetensors"
expect 1 "holds no checkpoint.safetensors" sample "$work"
# a config naming a wider MLP than the tensors hold
sed 's/mlp.width=128/mlp.width=64/' "$work/keep" >"$work/edited.safetensors"
expect 1 "edited.safetensors" sample "$work/edited.safetensors"
sed 's/mlp.depth=3/mlp.depth=x/' "$work/keep" >"$work/edited2.safetensors"
expect 1 "config line .*mlp.depth=x" info "$work/edited2.safetensors"
mkdir -p "$work/res" && cp "$work/half.safetensors" "$work/res/checkpoint.safetensors"
expect 1 "checkpoint.safetensors" train --resume --steps 8 --out "$work/res"
cmp -s "$work/half.safetensors" "$work/res/checkpoint.safetensors" ||
  fail "resuming from a damaged checkpoint changed it"

echo "ok: $n refusals, each with its message"
