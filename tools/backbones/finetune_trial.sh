#!/bin/bash
# finetune_trial.sh: one trial of the joint fine-tune space (datasets/spaces.jsonl, `finetune`)
# as a `kb train net` run, for `kb search` trial commands (docs/FORMAT.md, "The finetune
# space").
#
#   finetune_trial.sh --kb-bin KB --kb PATH --train FILE [--test FILE] --config JSON
#                     [--arch ARCH] [--checkpoint-dir DIR] [-- EXTRA kb train net ARGS...]
#
# JSON is the trial's configuration ({config_json}). Its `backbone` is a backbone id of the KB
# (kb show gives its weights' URI and architecture) or "none" (train ARCH from scratch; default
# the backbones' CNN); `head_layers` x FC(`head_units`) are appended after the backbone's
# layers as the new last stage (kb train net loads the backbone under it); `freeze` becomes
# --freeze; every other key (lr_policy, base_lr, momentum, weight_decay, gamma, stepsize,
# max_iter) goes to kb train net --config, with optimizer momentum and batch_size 32 fixed.
# EXTRA args follow, e.g. --set max_iter={budget} for Hyperband.
# --checkpoint-dir DIR makes promotions resume: the run writes a snapshot to DIR under a key
# of everything but its budget (configuration, data, arch, the other EXTRA args), and a later
# run of the same key with a larger budget resumes from it (kb train net --resume: bit for
# bit the run that trained that long at once, for lr policies fixed and step) instead of
# starting over; a snapshot that does not fit (e.g. already past the budget) is ignored.
# The learning curve and final line are kb train net's (JSON lines on stdout).
set -eu
kb_bin=kb kb_path= train= test= config= ckpt= arch='C(5,8)+P(2,2)+C(3,16)+P(2,2)+FC(64)'
while [ $# -gt 0 ]; do
    case $1 in
    --kb-bin) kb_bin=$2; shift 2 ;;
    --kb) kb_path=$2; shift 2 ;;
    --train) train=$2; shift 2 ;;
    --test) test=$2; shift 2 ;;
    --config) config=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --checkpoint-dir) ckpt=$2; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "finetune_trial.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
[ -n "$train" ] && [ -n "$config" ] || { echo "finetune_trial.sh: need --train and --config" >&2; exit 2; }

# the flat configuration object: string or number values
get() { printf '%s' "$config" | sed -n "s/.*\"$1\" *: *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p"; }
drop() { printf '%s' "$1" | sed "s/\"$2\" *: *\"\{0,1\}[^\",}]*\"\{0,1\} *,\{0,1\}//; s/, *}/}/"; }
backbone=$(get backbone) freeze=$(get freeze) layers=$(get head_layers) units=$(get head_units)
rest=$config
for k in backbone freeze head_layers head_units; do rest=$(drop "$rest" "$k"); done
rest=$(printf '%s' "$rest" | sed 's/^{ *}$/{/; s/^{\(.\)/{"optimizer":"momentum","batch_size":32,\1/; s/^{$/{"optimizer":"momentum","batch_size":32}/')

args=()
if [ -n "$backbone" ] && [ "$backbone" != none ]; then
    rec=$("$kb_bin" show "$backbone" ${kb_path:+--kb "$kb_path"} --json)
    uri=$(printf '%s' "$rec" | sed -n 's/.*"uri":"\([^"]*\)".*/\1/p')
    arch=$(printf '%s' "$rec" | sed -n 's/.*"arch":"\([^"]*\)".*/\1/p')
    [ -n "$uri" ] || { echo "finetune_trial.sh: backbone '$backbone' has no uri" >&2; exit 3; }
    args+=(--init-from "${uri#file://}")
fi
for ((i = 0; i < ${layers:-0}; i++)); do arch="$arch+FC(${units:-64})"; done
[ -n "$test" ] && args+=(--test "$test")
net() { "$kb_bin" train net "$train" --arch "$arch" --freeze "${freeze:-0}" --config "$rest" \
    "${args[@]}" "$@"; }
[ -n "$ckpt" ] || exec "$kb_bin" train net "$train" --arch "$arch" --freeze "${freeze:-0}" \
    --config "$rest" "${args[@]}" "$@"

# the key: every argument except the budget (max_iter / epochs set after --)
keep=() prev=
for a in "$@"; do
    case "$prev:$a" in --set:max_iter=*|--set:epochs=*) unset 'keep[${#keep[@]}-1]' ;; *) keep+=("$a") ;; esac
    prev=$a
done
mkdir -p "$ckpt"
key=$(printf '%s\n' "$config" "$train" "$test" "$arch" "$kb_path" "${keep[@]}" | sha256sum | cut -c1-24)
snap=$ckpt/$key.kbs
if [ -s "$snap" ]; then
    # a usage refusal (exit 2) happens before any output: then train from the start
    rc=0
    net --resume "$snap" --snapshot "$snap" "$@" 2>"$snap.err" || rc=$?
    if [ $rc != 2 ]; then cat "$snap.err" >&2; rm -f "$snap.err"; exit $rc; fi
    rm -f "$snap.err"
fi
net --snapshot "$snap" "$@"
