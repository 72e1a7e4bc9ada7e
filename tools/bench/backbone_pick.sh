#!/bin/sh
# backbone_pick.sh: how often `kb recommend DATASET` (the command itself) picks the best
# backbone for each Fashion-MNIST target, with LogME on the target's data (--transfer logme,
# the default) and with the knowledge base alone (--transfer none). "Best" is the highest mean
# test accuracy over the seeds of finetune_bench's default-hyperparameter fine-tunes.
#
#   sh tools/bench/backbone_pick.sh KB_BIN KB_PATH MANIFEST RESULTS [SPACE]
#
# KB_PATH, MANIFEST, RESULTS as made by make_backbones.sh, finetune_bench --out and
# finetune_search.sh (whose trials are the knowledge base's fine-tune evidence); every target
# is recommended for with --held-out, so its own trials never count. Needs /usr/bin/python3.
set -eu
[ $# -ge 4 ] || { echo "usage: backbone_pick.sh KB_BIN KB_PATH MANIFEST RESULTS [SPACE]" >&2; exit 2; }
kb=$1 kbp=$2 man=$3 res=$4 space=${5:-finetune-joint}
picks=$(mktemp)
trap 'rm -f "$picks"' EXIT
awk -F'\t' '$1 == "target" { print $2 "\t" $4 }' "$man" | while IFS="$(printf '\t')" read -r t tr; do
  for mode in logme none; do
    bid=$("$kb" recommend "$tr" --kb "$kbp" --space "$space" --held-out --transfer "$mode" --json --quiet 2>/dev/null |
          sed -n 's/.*"backbones":\[{[^}]*"backbone":"\([^"]*\)".*/\1/p')
    name=$(awk -F'\t' -v b="$bid" '$1 == "backbone" && $6 == b { print $2 }' "$man")
    echo "$t $mode ${name:--}"
  done
done > "$picks"
/usr/bin/python3 - "$res" "$picks" <<'PY'
import collections, json, sys
acc = collections.defaultdict(list)
for line in open(sys.argv[1]):
    o = json.loads(line)
    if o.get('method', '').startswith('finetune:'):
        acc[(o['target'], o['method'][len('finetune:'):])].append(o['test_accuracy'])
mean = {k: sum(v) / len(v) for k, v in acc.items()}
picks = collections.defaultdict(dict)
for line in open(sys.argv[2]):
    t, mode, name = line.split()
    picks[mode][t] = name
print('| target | best (mean acc) | kb recommend, LogME | lost | kb recommend, KB alone | lost |')
print('| --- | --- | --- | ---: | --- | ---: |')
lost = collections.defaultdict(list)
for t in sorted(picks['logme']):
    accs = {b: a for (tt, b), a in mean.items() if tt == t}
    best = max(accs, key=accs.get)
    row = ['%s' % t, '%s (%.4f)' % (best, accs[best])]
    for mode in ('logme', 'none'):
        name = picks[mode][t]
        l = accs[best] - accs.get(name, float('nan'))
        lost[mode].append((name == best, l))
        row += [name, '%.4f' % l]
    print('| ' + ' | '.join(row) + ' |')
for mode in ('logme', 'none'):
    n = len(lost[mode])
    hits = sum(h for h, _ in lost[mode])
    ls = [l for _, l in lost[mode]]
    print('%s: picks the best %d of %d; accuracy lost mean %.4f, largest %.4f'
          % (mode, hits, n, sum(ls) / n, max(ls)))
PY
