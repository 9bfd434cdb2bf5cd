#!/usr/bin/env bash
# Change-driven step skipping for recipes: a step runs only when its inputs or its command
# changed since it last succeeded. make's idea, with content checksums instead of timestamps,
# so that an input rewritten with identical content (a re-prepared data dir, a lang dir rebuilt
# from an unchanged lexicon) changes nothing downstream.
#
#   step STAMP INPUT... [--out OUTPUT...] -- COMMAND [ARG...]
#
# STAMP is the step's stamp file, kept inside the step's output dir (exp/mono/.stamp,
# exp/mono/graph_commands/.stamp), so deleting an output also forgets that it was made. An
# INPUT is
#   - a file: its content;
#   - a directory: the content of its top-level non-hidden files (a data dir, a lang dir; the
#     split*/ and log/ subdirs that steps write into their inputs do not count);
#   - `tree:DIR`: the names, sizes and mtimes of every file below DIR (a corpus of thousands of
#     wavs, where reading every byte would cost more than the step).
# A `*.scp` file also contributes the size and mtime of every archive it points into: its text
# stays the same when features are recomputed into the same archive names.
# OUTPUTs are files the step writes; the stamp records their size and mtime, so an output that
# was deleted or rewritten by something else makes the step run again.
# The stamp holds one line per input with its checksum, the kaldilite version, the command
# (with the body of a shell function when COMMAND is one) and the outputs. When the stamp
# matches, the step logs "up to date" and does nothing; otherwise the stamp is removed, COMMAND runs and, only if it
# succeeds, the new stamp is written. KALDILITE_FORCE=true runs every step regardless.
# Needs `log` from path.sh.

_stamp_version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$KALDILITE_REPO/kaldilite/__init__.py")

_stamp_file_sum() {
  # Checksum of one file; for script files also the size+mtime of the archives they reference.
  {
    sha1sum < "$1"
    case "$1" in
      *.scp)
        awk '{print $NF}' "$1" | sed 's/:[0-9]*$//' | LC_ALL=C sort -u |
          while read -r ark; do [ -f "$ark" ] && stat -c '%n %s %Y' "$ark"; done ;;
    esac
  } | sha1sum | cut -c1-40
}

_stamp_manifest() {
  local x f
  echo "kaldilite $_stamp_version"
  for x in "$@"; do
    case "$x" in
      tree:*)
        [ -d "${x#tree:}" ] || { echo "$x missing"; continue; }
        echo "$x $(find -L "${x#tree:}" -type f -printf '%P %s %T@\n' | LC_ALL=C sort | sha1sum | cut -c1-40)" ;;
      *)
        if [ -d "$x" ]; then
          echo "$x/ $(find -L "$x" -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | LC_ALL=C sort |
                      while read -r f; do echo "$f $(_stamp_file_sum "$x/$f")"; done | sha1sum | cut -c1-40)"
        elif [ -f "$x" ]; then
          echo "$x $(_stamp_file_sum "$x")"
        else
          echo "$x missing"
        fi ;;
    esac
  done
}

_stamp_outputs() {
  local x
  for x in "$@"; do
    if [ -e "$x" ]; then echo "out $(stat -L -c '%n %s %Y' "$x")"; else echo "out $x missing"; fi
  done
}

step() {
  local stamp=$1 inputs=() outputs=() manifest
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ] && [ "$1" != "--out" ]; do inputs+=("$1"); shift; done
  if [ "${1:-}" = "--out" ]; then
    shift
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  fi
  if [ $# -lt 2 ]; then echo "step: usage: step STAMP INPUT... [--out OUTPUT...] -- COMMAND [ARG...]" >&2; return 1; fi
  shift
  manifest=$(_stamp_manifest "${inputs[@]}"; printf 'command'; printf ' %q' "$@"; echo
             if declare -F "$1" >/dev/null; then declare -f "$1"; fi)
  if [ "${KALDILITE_FORCE:-false}" != true ] && [ -f "$stamp" ] &&
     [ "$(cat "$stamp")" = "$(printf '%s\n' "$manifest"; _stamp_outputs "${outputs[@]}")" ]; then
    log "  up to date: $stamp"
    return 0
  fi
  rm -f "$stamp"
  "$@"
  mkdir -p "$(dirname "$stamp")"
  { printf '%s\n' "$manifest"; _stamp_outputs "${outputs[@]}"; } > "$stamp.tmp"
  mv "$stamp.tmp" "$stamp"
}
