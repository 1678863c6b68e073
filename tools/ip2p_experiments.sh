#!/usr/bin/env bash
# The InstructPix2Pix measurements that docs/instructpix2pix.md and notebook 11 report, one command each, one
# thread, resumable (a finished training is skipped; evaluations append one JSON line each to data/ip2p/eval/).
# Its lines, collected (cp data/ip2p/eval/fig10.jsonl docs/instructpix2pix-experiments.jsonl), are what notebook 11
# section 8 draws. Needs three datasets under data/ip2p/ (about 40 minutes more, one thread each):
#   python -m editlab.ip2p data --out data/ip2p/generated --pairs 91 --samples-per-pair 4 --threads 1
#   python -m editlab.ip2p data --out data/ip2p/unfiltered --pairs 91 --samples-per-pair 4 --threads 1 --thresholds=-1,-1,-1
#   python -m editlab.ip2p oracle --out data/ip2p/oracle --pairs 3000
# (the second: the same caption pairs and pictures, every sample kept: no CLIP filter). About 110 minutes on a
# 2-core CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
D=data/ip2p
E=$D/eval
mkdir -p "$E"
evaluate() { $PY -m editlab.ip2p evaluate --threads 1 "$@"; }

# Fig. 10: the same short recipe (600 steps x 16) on less data, on generated instead of exact pairs, and on
# generated pairs not filtered by CLIP.
SHORT="steps=600 batch=16"
train() {  # name, then train's data arguments
  local name=$1; shift
  [ -d $D/ablation/$name ] || $PY -m editlab.ip2p train --threads 1 --quiet "$@" --workdir $D/ablation/work-$name \
      --out $D/ablation/$name --set $SHORT
  for s in 1.5 2.5; do
    evaluate --model $D/ablation/$name --image-scale $s --record $E/fig10.jsonl
  done
}
mkdir -p $D/ablation
train exact-3000 --data $D/oracle
train exact-214  --data $D/oracle --limit 214
train generated-214 --data $D/generated
train unfiltered-364 --data $D/unfiltered

# Fig. 8 at the shipped setting: the shipped editor and SDEdit (notebook 11 sweeps both scales).
evaluate --model toy-instruct-pix2pix --image-scale 1.5 --record $E/fig10.jsonl
evaluate --model sdedit --strength 0.5 --record $E/fig10.jsonl
