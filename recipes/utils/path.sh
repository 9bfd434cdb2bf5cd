#!/usr/bin/env bash
# Puts the repository's virtualenv first on PATH so recipes find `kaldilite` without an
# activated venv, and sets a `log` helper with a timestamp (icefall's prepare.sh style).
_kl_repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [ -x "$_kl_repo/.venv/bin/kaldilite" ]; then
  export PATH="$_kl_repo/.venv/bin:$PATH"
fi
if ! command -v kaldilite >/dev/null 2>&1; then
  echo "kaldilite is not installed: run 'make install' in $_kl_repo first" >&2
  exit 1
fi
export KALDILITE_REPO="$_kl_repo"
log() {
  echo "$(date '+%Y-%m-%d %H:%M:%S') ($(basename "$0")) $*"
}
