#!/bin/sh
# README maps Algorithms 1 and 2 to lines of ddpm/*.c. Each reference it
# makes must point at the line that does what it says: this table names
# what each line holds, so that code that moves fails here until README
# (and the table) move with it. Usage: readme_lines.sh SOURCE_ROOT
set -eu
root=$1
fail=0
expect() { # file line text
    got=$(sed -n "$2p" "$root/$1")
    case $got in
    *"$3"*) ;;
    *) echo "README cites $1:$2 for '$3', but that line reads: $got"; fail=1 ;;
    esac
}
expect ddpm/train.c 86 'nd_train_step('
expect ddpm/train.c 106 'line 2'
expect ddpm/train.c 117 'nd_sample_timesteps'
expect ddpm/train.c 118 'nd_randn'
expect ddpm/train.c 119 'loss ='
expect ddpm/train.c 122 'nd_loss_simple_at'
expect ddpm/train.c 124 'line 5'
expect ddpm/train.c 125 'nd_clip_grad_norm'
expect ddpm/train.c 130 'nd_ema_update'
expect ddpm/diffusion.c 67 'nd_q_sample('
expect ddpm/diffusion.c 124 'nd_p_mean_variance('
expect ddpm/diffusion.c 142 'nd_clamp'
expect ddpm/diffusion.c 166 'nd_sample_timesteps('
expect ddpm/diffusion.c 174 'nd_loss_simple_at('
expect ddpm/sample.c 22 'nd_p_sample('
expect ddpm/sample.c 25 'nd_denoise'
expect ddpm/sample.c 32 'line 3'
expect ddpm/sample.c 34 'nonzero'
expect ddpm/sample.c 35 'nd_add(p.mean'
expect ddpm/sample.c 39 'nd__sampling_noise('
expect ddpm/sample.c 109 'line 1'
expect ddpm/sample.c 111 'line 2'
expect ddpm/sample.c 114 'line 3'
expect ddpm/sample.c 123 '}'
expect ddpm/sample.c 126 'line 6'
# and README cites no line this table does not check
cited=$(grep -o 'ddpm/[a-z_]*\.c:[0-9][0-9-]*' "$root/README.md" | sort -u)
for ref in $cited; do
    file=${ref%%:*}
    lines=${ref#*:}
    for n in $(echo "$lines" | tr '-' ' '); do
        grep -q "^expect $file $n " "$0" ||
            { echo "README cites $file:$n, which $0 does not check"; fail=1; }
    done
done
[ $fail -eq 0 ] && echo "README's $(echo "$cited" | wc -l) line references hold"
exit $fail
