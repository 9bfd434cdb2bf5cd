#!/usr/bin/env bash
# Installs the Debian packages kaldilite needs, only those that are missing:
#   espeak-ng (synthetic corpus, g2p fallback), sox (audio pipes in wav.scp),
#   libportaudio2 (microphone input through sounddevice).
set -euo pipefail
needed=(espeak-ng sox libportaudio2)
missing=()
for pkg in "${needed[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages present: ${needed[*]}"
  exit 0
fi
echo "installing Debian packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
    echo "error: need root (or sudo) to install ${missing[*]}; install them and re-run" >&2; exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
