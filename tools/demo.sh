#!/usr/bin/env bash
# `make demo`: runs the project's main job end to end and prints its results.
# The commands recipe (recipes/commands) is the main job once it exists; until then the most
# complete pipeline is the digits recipe on FSDD, and this script says so in its first line.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -x recipes/commands/run.sh ]; then
  echo "make demo: running recipes/commands/run.sh (command words with OOV rejection)"
  exec recipes/commands/run.sh "$@"
fi
echo "make demo: the commands recipe does not exist yet; running the most complete pipeline, recipes/digits/run.sh (FSDD digits, monophone GMM-HMM)"
recipes/digits/run.sh "$@"
echo
echo "Results (recipes/digits/RESULTS):"
cat recipes/digits/RESULTS
