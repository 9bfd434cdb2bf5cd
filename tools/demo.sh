#!/usr/bin/env bash
# `make demo`: runs the project's main job end to end and prints its results.
# The commands recipe (recipes/commands) is the main job once it exists; until then the most
# complete pipeline is the digits recipe on FSDD, and this script says so in its first line.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x recipes/commands/run.sh ]; then
  echo "make demo: running recipes/commands/run.sh (command words with OOV rejection; it says which corpus first)"
  recipes/commands/run.sh "$@"
  work=work  # the recipe's --dir (relative to recipes/commands, as run.sh takes it)
  args=("$@")
  for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[$i]}" in
      --dir) work=${args[$((i + 1))]:-work} ;;
      --dir=*) work=${args[$i]#--dir=} ;;
    esac
  done
  case "$work" in /*) ;; *) work=recipes/commands/$work ;; esac
  if [ -f "$work/RESULTS" ]; then  # (not written when --stop-stage ends before stage 10)
    echo
    echo "Results ($work/RESULTS):"
    cat "$work/RESULTS"
  fi
  # The recipe's stage 11 exported the best model that runs online (tri3b is not one: it needs
  # per-speaker fMLLR) with its own graph and the rejection rule calibrated on its decodes, and
  # named its bundle in exp/online_bundle.
  bundle=
  if [ -f "$work/exp/online_bundle" ]; then bundle=$work/$(cat "$work/exp/online_bundle"); fi
  if [ -n "$bundle" ] && [ -f "$bundle/bundle.json" ]; then
    echo
    echo "Try it live (${bundle##*/}: $(sed -n 's/.*"rejection": "\(.*\)".*/rejection rule \1/p' "$bundle/bundle.json")):"
    echo "  .venv/bin/kaldilite decode-online --model $bundle --mic      # or --wav FILE..., or arecord ... | --stdin"
  fi
  exit 0
fi
echo "make demo: the commands recipe does not exist yet; running the most complete pipeline, recipes/digits/run.sh (FSDD digits, monophone GMM-HMM)"
recipes/digits/run.sh "$@"
echo
echo "Results (recipes/digits/RESULTS):"
cat recipes/digits/RESULTS
