#!/usr/bin/env bash
# `make demo`: runs the project's main job end to end and prints its results.
# The commands recipe (recipes/commands) is the main job once it exists; until then the most
# complete pipeline is the digits recipe on FSDD, and this script says so in its first line.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x recipes/commands/run.sh ]; then
  echo "make demo: running recipes/commands/run.sh (command words with OOV rejection; it says which corpus first)"
  recipes/commands/run.sh "$@"
  work=recipes/commands/work
  # tri3b (SAT) is not offered: it needs per-speaker fMLLR, which online decoding does not estimate.
  best=$(for m in nnet2 tri2b tri1 mono; do [ -f "$work/exp/$m/graph_commands/HCLG.npz" ] && echo $m && break; done)
  echo
  echo "Try it live (best model: ${best:-none}):"
  echo "  cd $work && kaldilite export-model --mfcc-config ../conf/mfcc.conf --data data/train exp/$best exp/$best/graph_commands bundle"
  echo "  kaldilite decode-online --model bundle --mic        # or --wav FILE..., or arecord ... | --stdin"
  exit 0
fi
echo "make demo: the commands recipe does not exist yet; running the most complete pipeline, recipes/digits/run.sh (FSDD digits, monophone GMM-HMM)"
recipes/digits/run.sh "$@"
echo
echo "Results (recipes/digits/RESULTS):"
cat recipes/digits/RESULTS
