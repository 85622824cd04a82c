#!/bin/sh
# The quality bar for points: for each 2-D toy set, train the MLP with the
# defaults of `nanodiff train` for 10,000 steps, draw 5,000 samples with
# Algorithm 2, and measure them with toy_quality against fresh data
# (energy distance, k-NN precision and recall with k = 5).
#
#   bench/toy_quality.sh BUILD_DIR WORK_DIR [SETS...]
#
# SETS default to moons ring checkerboard pinwheel. Extra options for
# nanodiff train can be given in TRAIN_ARGS (e.g. TRAIN_ARGS="--threads 1").
set -eu
build=$1
work=$2
shift 2
sets=${*:-moons ring checkerboard pinwheel}
mkdir -p "$work"
printf '%-13s %9s %9s %9s %9s %9s %9s %8s %8s\n' set energy floor precision floor recall floor \
  train_s sample_s
for set in $sets; do
  dir=$work/$set
  rm -rf "$dir"
  t0=$(date +%s)
  "$build/nanodiff" train --data "$set" --steps 10000 --sample-every 0 ${TRAIN_ARGS:-} \
    --out "$dir" >"$dir.train.log" 2>&1
  t1=$(date +%s)
  "$build/nanodiff" sample "$dir" --n 5000 --chain 0 --seed 1 >"$dir.sample.log" 2>&1
  t2=$(date +%s)
  "$build/bench/toy_quality" "$set" "$dir/samples.npy" >"$dir.quality.log"
  get() { awk -v k="$1" '$1 == k {print $2}' "$dir.quality.log"; }
  printf '%-13s %9.5f %9.5f %9.4f %9.4f %9.4f %9.4f %8d %8d\n' "$set" \
    "$(get energy_distance)" "$(get floor_energy_distance)" "$(get knn_precision)" \
    "$(get floor_knn_precision)" "$(get knn_recall)" "$(get floor_knn_recall)" \
    $((t1 - t0)) $((t2 - t1))
done
