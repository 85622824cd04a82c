#!/bin/sh
# What each command writes: help for every command, a run's files, the
# samples as PNG, .npy (header by the format's rules) and CSV, the reverse
# chain, the forward process, and what info reports.
# usage: commands.sh NANODIFF WORKDIR
set -u
nanodiff=$1
work=$2/commands
rm -rf "$work" && mkdir -p "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }
has() { [ -s "$1" ] || fail "$1 is missing or empty"; }
png() { # png FILE WIDTH HEIGHT: the signature and the IHDR size
  has "$1"
  sig=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
  [ "$sig" = 89504e470d0a1a0a ] || fail "$1 is not a PNG ($sig)"
  w=$(od -An -tu1 -j16 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}')
  h=$(od -An -tu1 -j20 -N4 "$1" | awk '{print $1*16777216 + $2*65536 + $3*256 + $4}')
  [ -z "${2:-}" ] || [ "$w" = "$2" ] || fail "$1 is $w pixels wide, not $2"
  [ -z "${3:-}" ] || [ "$h" = "$3" ] || fail "$1 is $h pixels high, not $3"
}
npy() { # npy FILE SHAPE: magic, version 1.0, '<f4', C order, the shape, the
  # header padded so the data starts at a multiple of 64, the data's size
  has "$1"
  magic=$(od -An -tx1 -N8 "$1" | tr -d ' \n')
  [ "$magic" = 934e554d50590100 ] || fail "$1: magic and version $magic"
  hlen=$(od -An -tu1 -j8 -N2 "$1" | awk '{print $1 + 256 * $2}')
  [ $(( (10 + hlen) % 64 )) -eq 0 ] || fail "$1: data at $((10 + hlen)), not aligned to 64"
  header=$(dd if="$1" bs=1 skip=10 count="$hlen" 2>/dev/null)
  case "$header" in
    *"'descr': '<f4'"*"'fortran_order': False"*"'shape': $2"*) ;;
    *) fail "$1: header '$header' is not <f4, C order, shape $2" ;;
  esac
  count=$(echo "$2" | tr -d '(),' | awk '{p = 1; for (i = 1; i <= NF; i++) p *= $i; print p}')
  size=$(wc -c <"$1")
  [ "$size" -eq $((10 + hlen + 4 * count)) ] || fail "$1: $size bytes for shape $2"
}

for c in "" demo train sample eval field interpolate encode classifier score forward info help; do
  "$nanodiff" $c --help >"$work/help" 2>&1 || fail "nanodiff $c --help failed"
  grep -q "^usage: nanodiff" "$work/help" || fail "nanodiff $c --help prints no usage"
done
"$nanodiff" train --model unet --help | grep -q -- "--batch N *examples per step (default 16)" ||
  fail "train --model unet --help does not show the UNet's defaults"

# points: a short run, then samples with their chain
"$nanodiff" train --timesteps 40 --steps 30 --batch 64 --sample-every 20 --out "$work/moons" \
  >"$work/train.log" 2>&1 || fail "training on moons failed: $(cat "$work/train.log")"
for f in checkpoint.safetensors loss.csv; do has "$work/moons/$f"; done
png "$work/moons/loss.png" 720 440
png "$work/moons/samples-0000020.png" 480 480
png "$work/moons/samples-0000030.png"
[ "$(sed -n 1p "$work/moons/loss.csv")" = "step,loss,grad_norm,lr" ] || fail "loss.csv header"
[ "$(wc -l <"$work/moons/loss.csv")" -eq 31 ] || fail "loss.csv has not 30 steps"
grep -q "^step 30/30 " "$work/train.log" || fail "no progress line for the last step"
[ -e "$work/moons/.lock" ] || fail "no lock file"
"$nanodiff" sample "$work/moons" --n 300 --chain 10 --seed 3 >"$work/sample.log" 2>&1 ||
  fail "sampling failed: $(cat "$work/sample.log")"
npy "$work/moons/samples.npy" "(300, 2)"
png "$work/moons/samples.png" 480 480
[ "$(wc -l <"$work/moons/samples.csv")" -eq 300 ] || fail "samples.csv has not 300 lines"
for t in 0040 0030 0020 0010 0001; do png "$work/moons/samples-chain-t$t.png"; done
# the same seed draws the same points; --weights raw others
"$nanodiff" sample "$work/moons" --n 300 --chain 0 --seed 3 --prefix again >/dev/null 2>&1
cmp -s "$work/moons/samples.npy" "$work/moons/again.npy" || fail "the same seed drew other points"
"$nanodiff" sample "$work/moons" --n 300 --chain 0 --seed 3 --weights raw --prefix raw >/dev/null 2>&1
cmp -s "$work/moons/samples.npy" "$work/moons/raw.npy" && fail "raw weights drew the EMA's points"
# sample k is the same in any batch: the first 100 of 300 are the 100
"$nanodiff" sample "$work/moons" --n 100 --chain 0 --seed 3 --prefix first >/dev/null 2>&1
head -n 100 "$work/moons/samples.csv" >"$work/a.csv"
cmp -s "$work/a.csv" "$work/moons/first.csv" || fail "sample k depends on the batch"
# the learned score as arrows, at the default steps and given ones
"$nanodiff" field "$work/moons" >"$work/field.log" 2>&1 || fail "field failed"
for t in 0001 0002 0010 0040; do png "$work/moons/field-t$t.png" 560 560; done
"$nanodiff" field "$work/moons" --t 3,7 --grid 5 --prefix f >/dev/null 2>&1 || fail "field --t"
png "$work/moons/f-t0003.png" && png "$work/moons/f-t0007.png"
# respaced
"$nanodiff" sample "$work/moons" --n 50 --steps 10 --chain 5 --prefix fast >/dev/null 2>&1 ||
  fail "respaced sampling failed"
npy "$work/moons/fast.npy" "(50, 2)"
# the chain of 10 of the 40 steps (tau = 0, 4, 9, 13, 17, ...) names the
# original steps: x_T, five steps on (tau_4 = 17) and the last
for t in 0040 0018 0001; do png "$work/moons/fast-chain-t$t.png"; done
[ "$(ls "$work/moons" | grep -c '^fast-chain-t')" -eq 3 ] || fail "respaced chain: not 3 pictures"

# images: a tiny UNet on shapes, sampled with the chain strip
"$nanodiff" train --data shapes --ch 8 --ch-mult 1,2 --blocks 1 --attn none --timesteps 20 \
  --steps 3 --batch 4 --sample-every 0 --preview-steps 5 --out "$work/shapes" >/dev/null 2>&1 ||
  fail "training on shapes failed"
png "$work/shapes/samples-0000003.png"
"$nanodiff" sample "$work/shapes" --n 3 --chain 5 --out "$work/out" >/dev/null 2>&1 ||
  fail "sampling images failed"
npy "$work/out/samples.npy" "(3, 1, 32, 32)"
# 2 x 2 cells of 32 pixels shown as 64 (each pixel 2 x 2), 2-pixel borders
png "$work/out/samples.png" 134 134
# rows: x_t and x0 for each of 3 images; columns: t = 20, 15, 10, 5, 1 and x_0
png "$work/out/samples-chain.png" $((6 * 66 + 2)) $((6 * 66 + 2))

"$nanodiff" field "$work/shapes" 2>&1 | grep -q "not a model of 2-D points" ||
  fail "field drew an image model"
# a class-conditional model: one row per class; guidance w = 0 is the
# unconditional model, whatever the class; w = 1 the conditional one
"$nanodiff" train --data shapes --classes --ch 8 --ch-mult 1,2 --blocks 1 --attn none \
  --timesteps 20 --steps 3 --batch 4 --sample-every 0 --preview-steps 5 --out "$work/cond" \
  >/dev/null 2>&1 || fail "training a class-conditional model failed"
"$nanodiff" info "$work/cond" | grep -q "unet.num_classes=3" || fail "shapes: not 3 classes"
"$nanodiff" sample "$work/cond" --n 6 --chain 0 >/dev/null 2>&1 || fail "sampling classes failed"
png "$work/cond/samples.png" $((2 * 66 + 2)) $((3 * 66 + 2))
for c in 0 2; do
  for w in 0 1; do
    "$nanodiff" sample "$work/cond" --n 2 --chain 0 --steps 5 --class $c --guidance $w \
      --prefix "c$c-w$w" >/dev/null 2>&1 || fail "sampling class $c, w = $w failed"
  done
done
npy "$work/cond/c2-w1-labels.npy" "(2,)"
cmp -s "$work/cond/c0-w0.npy" "$work/cond/c2-w0.npy" || fail "guidance 0 depends on the class"
cmp -s "$work/cond/c0-w1.npy" "$work/cond/c2-w1.npy" && fail "guidance 1 ignores the class"
# DDIM with eta = 0: deterministic given x_T; eta = 1 adds noise
"$nanodiff" sample "$work/shapes" --n 2 --chain 0 --sampler ddim --steps 5 --prefix ddim0 \
  >/dev/null 2>&1 || fail "DDIM failed"
"$nanodiff" sample "$work/shapes" --n 2 --chain 0 --sampler ddim --steps 5 --eta 1 \
  --prefix ddim1 >/dev/null 2>&1 || fail "DDIM eta 1 failed"
npy "$work/shapes/ddim0.npy" "(2, 1, 32, 32)"
cmp -s "$work/shapes/ddim0.npy" "$work/shapes/ddim1.npy" && fail "DDIM's eta changes nothing"

# drawn in batches of 1 or all at once: the same samples
"$nanodiff" sample "$work/shapes" --n 2 --chain 0 --sampler ddim --steps 5 --batch 1 \
  --prefix ddim0-b1 >/dev/null 2>&1 || fail "DDIM in batches of 1 failed"
cmp -s "$work/shapes/ddim0.npy" "$work/shapes/ddim0-b1.npy" ||
  fail "samples depend on the batch they are drawn in"

# the feature classifier and scores: a classifier that learned the shapes
# scores real shapes (the floor) far below the samples of 3 training
# steps; points get the energy distance
"$nanodiff" classifier --data shapes --width 8 --steps 300 --batch 16 --lr 0.003 \
  --out "$work/shapes-classifier.safetensors" >"$work/classifier.log" 2>&1 ||
  fail "classifier failed: $(cat "$work/classifier.log")"
acc=$(sed -n 's/^test accuracy \([0-9.]*\)% .*/\1/p' "$work/classifier.log")
[ -n "$acc" ] && awk -v a="$acc" 'BEGIN { exit !(a >= 90) }' ||
  fail "the classifier got ${acc:-no}% of the shapes right"
score() { # score ARGS...: the Frechet distance score prints
  "$nanodiff" score "$@" --classifier "$work/shapes-classifier.safetensors" --ref 500 \
    >"$work/score.log" 2>&1 || fail "score $*: $(cat "$work/score.log")"
  sed -n 's/^frechet distance \([0-9.e+-]*\) .*/\1/p' "$work/score.log"
}
fl=$(score --floor --data shapes --n 200)
bad=$(score "$work/shapes" --prefix ddim0)
grep -q "of 2 samples and of 500 test images of shapes" "$work/score.log" || fail "score: counts"
grep -q "^classes the classifier sees in them: 0: " "$work/score.log" || fail "score: classes"
awk -v f="$fl" -v b="$bad" 'BEGIN { exit !(f >= 0 && b > 5 * f) }' ||
  fail "the floor $fl is not far below the untrained model's $bad"
score "$work/cond" --prefix c2-w1 >/dev/null
grep -q "^the class each was drawn for: [0-9.]*% of them" "$work/score.log" ||
  fail "score of class-conditional samples: $(cat "$work/score.log")"
score "$work/cond/c0-w1.npy" "$work/cond/c2-w1.npy" --data shapes >/dev/null
grep -q "of 4 samples and of 500 test images" "$work/score.log" || fail "score: two files"
grep -q "^the class each was drawn for" "$work/score.log" || fail "score: two files' labels"
score "$work/cond/c0-w1.npy" "$work/cond/c2-w1.npy" --data shapes --n 3 >/dev/null
grep -q "of 3 samples and of 500 test images" "$work/score.log" || fail "score --n 3 of 4 samples"
"$nanodiff" score "$work/moons" >"$work/score.log" 2>&1 || fail "scoring points failed"
grep -q "^energy distance [0-9.]*  precision [0-9.]*  recall [0-9.]*  (300 samples against 300 fresh points of moons, k = 5)" \
  "$work/score.log" || fail "score of points: $(cat "$work/score.log")"

# the bound: every term, the parts adding up, progressive coding
"$nanodiff" eval "$work/shapes" --n 3 --out "$work/eval" >"$work/eval.log" 2>&1 ||
  fail "eval failed: $(cat "$work/eval.log")"
grep -q "exact, 20 of T = 20 terms" "$work/eval.log" || fail "eval: not exact over T = 20"
[ "$(sed -n 1p "$work/eval/eval.csv")" = "t,term_bpd,x0_rmse,rate_bpd,distortion_rmse" ] ||
  fail "eval.csv header"
[ "$(wc -l <"$work/eval/eval.csv")" -eq 21 ] || fail "eval.csv has not 20 steps"
[ "$(wc -l <"$work/eval/eval-bpd.csv")" -eq 5 ] || fail "eval-bpd.csv has not 3 images and a mean"
# total = L_T + sum of L_{t-1} + L_0 on every line; the mean row is the
# mean; the terms of t >= 2 in eval.csv add up to vb; rate(t = T) is L_T
awk -F, 'NR > 1 && $1 != "mean" { if (($2 - $3 - $4 - $5)^2 > 1e-8) bad = 1; s += $2; n++ }
         $1 == "mean" { if (($2 - s / n)^2 > 1e-8) bad = 1 }
         END { exit bad }' "$work/eval/eval-bpd.csv" || fail "eval-bpd.csv: the parts do not add up"
vb=$(awk -F, '$1 == "mean" {print $4}' "$work/eval/eval-bpd.csv")
prior=$(awk -F, '$1 == "mean" {print $3}' "$work/eval/eval-bpd.csv")
awk -F, -v vb="$vb" -v prior="$prior" 'NR > 1 && $1 >= 2 { s += $2 }
     $1 == 20 { rT = $4 } $1 == 1 { d1 = $5; e1 = $3 }
     END { exit ((s - vb)^2 > 1e-6 || (rT - prior)^2 > 1e-8 || (d1 - e1)^2 > 1e-6) }' \
  "$work/eval/eval.csv" || fail "eval.csv: terms, rate and distortion disagree with the bound"
png "$work/eval/eval-terms.png" 720 440
png "$work/eval/eval-rate-distortion.png" 720 440
# rows: x_t and predicted x_0 for 3 images; 8 steps and x_0 itself
png "$work/eval/eval-progressive.png" $((9 * 66 + 2)) $((6 * 66 + 2))
"$nanodiff" eval "$work/shapes" --n 2 --t-samples 5 --prefix est --out "$work/eval" \
  >"$work/est.log" 2>&1 || fail "eval estimate failed"
grep -q "estimated, 5 of T = 20 terms" "$work/est.log" || fail "eval: not an estimate"
[ "$(wc -l <"$work/eval/est.csv")" -eq 6 ] || fail "est.csv has not 5 steps"
[ ! -e "$work/eval/est-rate-distortion.png" ] || fail "an estimate drew a rate-distortion plot"

# deterministic encoding: a CSV line per S, the images, then latents and
# reconstructions for each S; more steps come back closer
"$nanodiff" encode "$work/shapes" --steps 2,20 --n 3 --out "$work/enc" >"$work/enc.log" 2>&1 ||
  fail "encode failed: $(cat "$work/enc.log")"
[ "$(sed -n 1p "$work/enc/encode.csv")" = "S,rmse,rmse_255,max_abs,seconds" ] || fail "encode.csv header"
[ "$(wc -l <"$work/enc/encode.csv")" -eq 3 ] || fail "encode.csv has not 2 lines of S"
png "$work/enc/encode.png" $((3 * 66 + 2)) $((5 * 66 + 2))
grep -q "^S =   20: RMSE " "$work/enc.log" || fail "encode prints no RMSE"

# interpolation: a row per t, the two images at the ends of each
"$nanodiff" interpolate "$work/shapes" --mix 5 --t 5,20 --out "$work/interp" >/dev/null 2>&1 ||
  fail "interpolate failed"
png "$work/interp/interpolate.png" $((7 * 66 + 2)) $((2 * 66 + 2))

# the forward process
"$nanodiff" forward --data shapes --n 3 --t 1,500,1000 --out "$work/fwd" >"$work/fwd.log" 2>&1 ||
  fail "forward failed"
png "$work/fwd.png" $((3 * 66 + 2)) $((3 * 66 + 2))
grep -q "t =  1000  abar 0.000040" "$work/fwd.log" || fail "forward: abar_T of the paper's schedule"
"$nanodiff" forward --data ring --t 1,100 --out "$work/ring" >/dev/null 2>&1 || fail "forward ring"
png "$work/ring-t0001.png" && png "$work/ring-t0100.png"

# info
"$nanodiff" info "$work/moons" --tensors >"$work/info" || fail "info failed"
grep -q "step       30" "$work/info" || fail "info: step"
grep -q "model      111746 parameters" "$work/info" || fail "info: parameter count"
grep -q "optimizer  adam after 30 steps: 223492 numbers" "$work/info" || fail "info: optimizer"
grep -q "ema        decay 0.995" "$work/info" || fail "info: ema"
grep -q "    T=40" "$work/info" || fail "info: settings"
grep -q "ema.out.weight" "$work/info" || fail "info: tensors"
echo "ok: every command's files"
