#!/bin/sh
# The paper's ablation of what the network predicts and how the loss is
# weighted (section 4.4, Table 2), small: the same UNet trained on
# Fashion-MNIST for the same steps with (eps, L_simple), (mu_tilde, L_vlb),
# (mu_tilde, MSE) and (eps, L_vlb); then each model's bound on test images
# (nanodiff eval, an unbiased estimate from K steps) and a grid of samples.
#
#   bench/ablation.sh BUILD_DIR WORK_DIR
#
# STEPS (default 2000), K (default 100), N (test images, default 64) and
# TRAIN_ARGS (more options for nanodiff train) can be set in the
# environment; JOBS (default 2) runs that many trainings at once; RUNS
# (e.g. "mean-vlb eps-vlb") runs only those, and the table shows every
# run WORK_DIR holds.
set -eu
build=$1
work=$2
steps=${STEPS:-2000}
k=${K:-100}
n=${N:-64}
jobs=${JOBS:-2}
model="--data fashion-mnist --ch 16 --ch-mult 1,2,2 --blocks 1 --attn 16 --dropout 0"
mkdir -p "$work"
run() { # run NAME PREDICTS LOSS
  dir=$work/$1
  rm -rf "$dir"
  t0=$(date +%s)
  "$build/nanodiff" train $model --predicts "$2" --loss "$3" --steps "$steps" \
    --sample-every 0 --threads 1 ${TRAIN_ARGS:-} --out "$dir" >"$dir.train.log" 2>&1
  t1=$(date +%s)
  "$build/nanodiff" eval "$dir" --n "$n" --t-samples "$k" --threads 1 >"$dir.eval.log" 2>&1
  t2=$(date +%s)
  "$build/nanodiff" sample "$dir" --n 36 --steps 100 --chain 0 --threads 1 \
    >"$dir.sample.log" 2>&1
  echo "$((t1 - t0)) $((t2 - t1))" >"$dir.times"
}
set -- "eps-simple eps mse" "mean-vlb mean vlb" "mean-mse mean mse" "eps-vlb eps vlb"
running=0
for r in "$@"; do
  case " ${RUNS:-${r%% *}} " in *" ${r%% *} "*) ;; *) continue ;; esac
  # shellcheck disable=SC2086
  run $r &
  running=$((running + 1))
  if [ $running -ge "$jobs" ]; then wait; running=0; fi
done
wait
printf '%-12s %-8s %-5s %10s %10s %10s %10s %8s %7s\n' run predicts loss bits/dim L_T \
  sum_L_t-1 L_0 train_s eval_s
for r in "$@"; do
  set -- $r
  [ -f "$work/$1.times" ] || continue
  line=$(grep '^bits/dim' "$work/$1.eval.log")
  bpd=$(echo "$line" | awk '{print $2}')
  lt=$(echo "$line" | sed 's/.*L_T \([^ ]*\).*/\1/')
  vb=$(echo "$line" | sed 's/.*L_{t-1} \([^ ]*\).*/\1/')
  l0=$(echo "$line" | sed 's/.*L_0 \([^ ]*\).*/\1/')
  printf '%-12s %-8s %-5s %10s %10s %10s %10s %8s %7s\n' "$1" "$2" "$3" "$bpd" "$lt" "$vb" "$l0" \
    $(cat "$work/$1.times")
done
echo "(bits/dim: an estimate from $k of the T steps on $n test images; grids: $work/*/samples.png)"
