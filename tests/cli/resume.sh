#!/bin/sh
# nanodiff train --resume continues bit for bit: a run stopped (by its
# --steps, by Ctrl-C, or killed with SIGKILL at random moments) and resumed
# ends with the same checkpoint and loss log as a run never stopped, and
# the checkpoint on disk loads whenever the process dies.
# usage: resume.sh NANODIFF WORKDIR [SEED]
set -u
nanodiff=$1
work=$2/resume
seed=${3:-$$}
steps=300
rm -rf "$work" && mkdir -p "$work" || exit 1
fail() { echo "FAIL (seed $seed): $*"; exit 1; }
small="--timesteps 50 --batch 64 --sample-every 0 --preview-steps 10"
# (run in the background without a function, so that $! is nanodiff itself)
run() { "$nanodiff" train $small "$@"; }

run --steps $steps --checkpoint-every 1000 --out "$work/whole" >/dev/null 2>&1 ||
  fail "the uninterrupted run failed"

same() { # same DIR: DIR ended as the uninterrupted run
  cmp -s "$work/whole/checkpoint.safetensors" "$1/checkpoint.safetensors" ||
    fail "$1: the checkpoint differs from the uninterrupted run's"
  cmp -s "$work/whole/loss.csv" "$1/loss.csv" ||
    fail "$1: loss.csv differs from the uninterrupted run's"
}

# 1. Stopped by --steps, resumed with a larger --steps.
run --steps 25 --checkpoint-every 7 --out "$work/split" >/dev/null 2>&1 || fail "first half"
"$nanodiff" train --resume --steps $steps --out "$work/split" >/dev/null 2>&1 || fail "resume"
same "$work/split"

# 2. Ctrl-C (SIGINT): a checkpoint at the step reached, exit status 130.
"$nanodiff" train $small --steps 100000 --checkpoint-every 1000000 --out "$work/int" \
  >"$work/int.log" 2>&1 &
pid=$!
sleep 1
kill -INT $pid
wait $pid
rc=$?
[ $rc -eq 130 ] || fail "Ctrl-C: exit status $rc, not 130"
grep -q "stopped by Ctrl-C at step" "$work/int.log" || fail "Ctrl-C: no message"
"$nanodiff" info "$work/int" >/dev/null || fail "Ctrl-C: the checkpoint does not load"
step=$("$nanodiff" info "$work/int" | awk '$1 == "step" {print $2}')
grep -q "at step $step of" "$work/int.log" || fail "Ctrl-C: checkpoint step $step not the one reported"

# 3. SIGKILL at random moments: whatever is on disk loads, and resuming
# after every kill still ends as the uninterrupted run.
echo "kill test seed $seed"
r=$seed
kills=0
while [ $kills -lt 6 ]; do
  r=$(( (r * 1103515245 + 12345) % 2147483648 ))
  delay=$(( r % 1500 ))
  if [ -f "$work/kill/checkpoint.safetensors" ]; then
    "$nanodiff" train --resume --steps $steps --checkpoint-every 3 --out "$work/kill" >/dev/null 2>&1 &
  else
    rm -rf "$work/kill"
    "$nanodiff" train $small --steps $steps --checkpoint-every 3 --out "$work/kill" >/dev/null 2>&1 &
  fi
  pid=$!
  sleep "$(( delay / 1000 )).$(printf %03d $(( delay % 1000 )))"
  kill -KILL $pid 2>/dev/null
  wait $pid 2>/dev/null
  kills=$((kills + 1))
  if [ -f "$work/kill/checkpoint.safetensors" ]; then
    "$nanodiff" info "$work/kill" >/dev/null 2>&1 ||
      fail "after a kill at ${delay} ms the checkpoint does not load"
  fi
done
if [ -f "$work/kill/checkpoint.safetensors" ]; then
  step=$("$nanodiff" info "$work/kill" | awk '$1 == "step" {print $2}')
  if [ "$step" -lt $steps ]; then
    "$nanodiff" train --resume --steps $steps --out "$work/kill" >/dev/null 2>&1 || fail "last resume"
  fi
else
  rm -rf "$work/kill"
  run --steps $steps --checkpoint-every 3 --out "$work/kill" >/dev/null 2>&1 || fail "fresh run"
fi
same "$work/kill"
# the killed saves' temporaries went at a later save into the folder
# (one not followed by any save may stay: that is the next run's to clean)
if [ "${step:-0}" -lt $steps ]; then
  left=$(ls "$work/kill" | grep -c 'nanodiff-tmp' || true)
  [ "$left" -eq 0 ] || fail "$left temporary files left in the run folder: $(ls "$work/kill")"
fi
echo "ok: stopped, interrupted and killed runs all resume bit for bit"
