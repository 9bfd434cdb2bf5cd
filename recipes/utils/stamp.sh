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
# stays the same when features are recomputed into the same archive names. A `*.conf` file (Kaldi
# options, `--name=value` lines) counts by its option lines only, as Kaldi's ReadConfigFile reads
# it (from a `#` to the end of the line dropped, blanks trimmed, empty lines skipped): editing the
# comments of conf/nnet2.conf re-runs nothing. Stamps that fingerprinted a conf by its raw content
# are accepted when it is unchanged, and rewritten.
# OUTPUTs are files the step writes; the stamp records their size and mtime (a `*.scp` file: its
# location-free checksum and mtime, see below), so an output that was deleted or rewritten by
# something else makes the step run again.
# The stamp holds one line per input with its checksum, the kaldilite version, the command
# (with the body of a shell function when COMMAND is one) and the outputs. When the stamp
# matches, the step logs "up to date" and does nothing; otherwise the stamp is removed, COMMAND runs and, only if it
# succeeds, the new stamp is written. KALDILITE_FORCE=true runs every step regardless.
#
# Stamps survive copying or moving the work dir (`cp -a work work2`, `mv work work2`) and running
# it from another checkout: every path a stamp records (input and output names, the command, the
# .scp contents and the archives they point into) has the work dir written as @work@ and the
# repository (the recipe's confs, lang/en) as @repo@, and what it fingerprints survives a copy
# (contents; sizes and mtimes, which cp -a and mv keep). `stamp_workdir`, called once in the work
# dir, records where it is (.workdir) and, when the dir was copied or moved, rewrites the
# absolute paths its .scp files hold (make-mfcc writes the archives' absolute paths, as Kaldi
# does) to the new place, keeping their mtimes, so the copy reads its own features. Stamps
# written before this (no "stamp 2" on their first line) are accepted when they match as they
# were computed then, paths into another checkout's recipes/ or lang/ aside, and are rewritten
# in the new form.
# Needs `log` from path.sh.

_stamp_version=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$KALDILITE_REPO/kaldilite/__init__.py")
_stamp_work=  # the work dir (physical path) once stamp_workdir ran; stamps write it as @work@
_stamp_repo_physical=$(cd "$KALDILITE_REPO" && pwd -P)

_stamp_sed_escape() { printf '%s' "$1" | sed 's/[][\\.*^$|&/]/\\&/g'; }

_stamp_norm_args=()
_stamp_set_norm() {
  # the sed expressions of _stamp_norm, built once (at load and by stamp_workdir), not per file
  # (the work dir's first: the default one is inside the repository)
  local p name
  _stamp_norm_args=()
  for name in work repo; do
    if [ $name = work ]; then set -- "$_stamp_work"; else set -- "$KALDILITE_REPO" "$_stamp_repo_physical"; fi
    for p in "$@"; do
      [ -n "$p" ] || continue
      p=$(_stamp_sed_escape "$p")
      _stamp_norm_args+=(-e "s|$p/|@$name@/|g" -e "s|$p\$|@$name@|" -e "s|$p\([[:space:]'\"]\)|@$name@\1|g")
    done
  done
}
_stamp_set_norm

_stamp_norm() {  # stdin -> stdout with the work dir's and the repository's absolute paths written @work@ and @repo@
  if [ ${#_stamp_norm_args[@]} -eq 0 ]; then cat; else sed "${_stamp_norm_args[@]}"; fi
}

_stamp_paths() {  # FORMAT: stdin -> stdout, paths made location-free (_stamp_norm), or as they are (FORMAT 1)
  if [ "$1" = 1 ]; then cat; else _stamp_norm; fi
}

_stamp_conf_options() {  # a Kaldi config file's option lines, as ParseOptions::ReadConfigFile reads them
  sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' -e '/^$/d' "$1"
}

_stamp_file_sum() {
  # Checksum of one file; a script file counts with its paths made location-free, plus the
  # size+mtime of the archives it references; a conf file by its option lines. $2 = 1: the first
  # format's (raw paths, raw conf files); 2raw: the second's before conf files counted by options.
  {
    case "$1" in
      *.scp)
        _stamp_paths "${2:-2}" < "$1" | sha1sum
        # one stat process for all the archives (a fork per file cost ~2 ms: 10 s for train_aug's 4250 wavs)
        awk '{print $NF}' "$1" | sed 's/:[0-9]*$//' | LC_ALL=C sort -u |
          while read -r ark; do if [ -f "$ark" ]; then printf '%s\0' "$ark"; fi; done | xargs -0 -r stat -c '%n %s %Y' |
          _stamp_paths "${2:-2}" ;;
      *.conf)
        if [ "${2:-2}" = 2 ]; then echo conf-options; _stamp_conf_options "$1" | sha1sum; else sha1sum < "$1"; fi ;;
      *) sha1sum < "$1" ;;
    esac
  } | sha1sum | cut -c1-40
}

_stamp_manifest() {  # FORMAT INPUT...: one line per input (FORMAT 1: the first stamps', raw paths)
  local format=$1 x f
  shift
  if [ "$format" = 1 ]; then echo "kaldilite $_stamp_version"; else echo "kaldilite $_stamp_version stamp 2"; fi
  for x in "$@"; do
    case "$x" in
      tree:*)
        [ -d "${x#tree:}" ] || { echo "$x missing"; continue; }
        echo "$x $(find -L "${x#tree:}" -type f -printf '%P %s %T@\n' | LC_ALL=C sort | sha1sum | cut -c1-40)" ;;
      *)
        if [ -d "$x" ]; then
          echo "$x/ $(find -L "$x" -maxdepth 1 -type f ! -name '.*' -printf '%f\n' | LC_ALL=C sort |
                      while read -r f; do echo "$f $(_stamp_file_sum "$x/$f" "$format")"; done | sha1sum | cut -c1-40)"
        elif [ -f "$x" ]; then
          echo "$x $(_stamp_file_sum "$x" "$format")"
        else
          echo "$x missing"
        fi ;;
    esac
  done
}

_stamp_outputs() {  # FORMAT OUTPUT...: size (a script file: its location-free checksum) and mtime of each
  local format=$1 x
  shift
  for x in "$@"; do
    if [ ! -e "$x" ]; then
      echo "out $x missing"
    elif [ "$format" = 1 ]; then
      echo "out $(stat -L -c '%n %s %Y' "$x")"
    else
      case "$x" in
        *.scp) echo "out $x $(_stamp_norm < "$x" | sha1sum | cut -c1-40) $(stat -L -c '%Y' "$x")" ;;
        *) echo "out $(stat -L -c '%n %s %Y' "$x")" ;;
      esac
    fi
  done
}

_stamp_checkout_free() {
  # The first format wrote the checkout's paths as they were: any path into a recipe's or lang/en's
  # folder is compared without the checkout it was in (the files' contents are compared anyway).
  sed -E "s#/[^[:space:]'\"]*/(recipes|lang)/#@repo@/\1/#g"
}

_stamp_head() {  # FORMAT: the inputs' and the command's part of the stamp (taken before the command runs)
  _stamp_manifest "$1" "${inputs[@]}"; printf 'command'; printf ' %q' "${command[@]}"; echo
  if declare -F "${command[0]}" >/dev/null; then declare -f "${command[0]}"; fi
}

_stamp_head_raw_confs() {
  # HEAD (format 2) -> the head as the second format wrote it before conf files counted by their option
  # lines: only the lines of *.conf file inputs differ, so only those are hashed again (a stale step's
  # other inputs, feature archives and data dirs, are not hashed a second time). A dir input holding
  # a top-level *.conf is not converted: such a step re-runs once.
  local head=$1 x
  for x in "${inputs[@]}"; do
    case "$x" in
      *.conf) [ -f "$x" ] && head=${head/"$x $(_stamp_file_sum "$x" 2)"/"$x $(_stamp_file_sum "$x" 2raw)"} ;;
    esac
  done
  printf '%s\n' "$head"
}

_stamp_expected() {  # FORMAT HEAD: what the stamp file holds for the step to be up to date
  { printf '%s\n' "$2"; _stamp_outputs "$1" "${outputs[@]}"; } | _stamp_paths "$1"
}

stamp_workdir() {
  # Run once in the work dir: note where it is; if it was copied or moved from elsewhere, point
  # its .scp files at its own archives (mtimes kept, so no step re-runs).
  local here old f
  here=$(pwd -P)
  old=$(cat .workdir 2>/dev/null || true)
  if [ -n "$old" ] && [ "$old" != "$here" ]; then
    log "  work dir moved or copied from $old: pointing its .scp files here"
    find . -name '*.scp' -type f -exec grep -lF "$old/" {} + 2>/dev/null | while read -r f; do
      sed "s|$(_stamp_sed_escape "$old")/|$(_stamp_sed_escape "$here")/|g" "$f" > "$f.relocated"
      touch -r "$f" "$f.relocated"
      mv "$f.relocated" "$f"  # written beside and renamed over: a `cp -al` copy shares the old file
    done
  fi
  [ "$old" = "$here" ] || echo "$here" > .workdir
  _stamp_work=$here
  _stamp_set_norm
}

step() {
  local stamp=$1 inputs=() outputs=() command=() stored head raw_head
  shift
  while [ $# -gt 0 ] && [ "$1" != "--" ] && [ "$1" != "--out" ]; do inputs+=("$1"); shift; done
  if [ "${1:-}" = "--out" ]; then
    shift
    while [ $# -gt 0 ] && [ "$1" != "--" ]; do outputs+=("$1"); shift; done
  fi
  if [ $# -lt 2 ]; then echo "step: usage: step STAMP INPUT... [--out OUTPUT...] -- COMMAND [ARG...]" >&2; return 1; fi
  shift
  command=("$@")
  head=$(_stamp_head 2)
  if [ "${KALDILITE_FORCE:-false}" != true ] && [ -f "$stamp" ]; then
    stored=$(cat "$stamp")
    if [ "$stored" = "$(_stamp_expected 2 "$head")" ]; then
      log "  up to date: $stamp"
      return 0
    fi
    if [ "${stored%%$'\n'*}" = "kaldilite $_stamp_version" ] && [ "$(_stamp_checkout_free <<< "$stored")" = \
         "$(_stamp_expected 1 "$(_stamp_head 1)" | _stamp_checkout_free)" ]; then
      _stamp_expected 2 "$head" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"  # the first format: up to date, rewritten
      log "  up to date: $stamp"
      return 0
    fi
    raw_head=$(_stamp_head_raw_confs "$head")
    if [ "$raw_head" != "$head" ] && [ "$stored" = "$(_stamp_expected 2raw "$raw_head")" ]; then  # confs by raw content
      _stamp_expected 2 "$head" > "$stamp.tmp" && mv "$stamp.tmp" "$stamp"
      log "  up to date: $stamp"
      return 0
    fi
  fi
  rm -f "$stamp"
  if [ -n "$_stamp_batch" ] && [ "${command[0]}" = kaldilite ]; then  # queued: step_batch_end runs it
    local n=${#_stamp_batch_stamps[@]}
    printf '%s\n' "$head" > "$_stamp_batch/$n.head"
    printf '%s\n' "${outputs[@]+"${outputs[@]}"}" > "$_stamp_batch/$n.outputs"
    printf '%q ' "${command[@]:1}" >> "$_stamp_batch/commands"
    echo >> "$_stamp_batch/commands"
    _stamp_batch_stamps+=("$stamp")
    return 0
  fi
  "$@"
  _stamp_write "$stamp" "$head"
}

_stamp_write() {  # STAMP HEAD: the stamp of a step that succeeded (its outputs as they are now)
  mkdir -p "$(dirname "$1")"
  _stamp_expected 2 "$2" > "$1.tmp"
  mv "$1.tmp" "$1"
}

# Batching: between step_batch_begin and step_batch_end, a step that is not up to date and whose
# COMMAND is `kaldilite VERB ...` is queued instead of run; step_batch_end runs the queued command
# lines with `kaldilite run-many --nj $nj` (at most $nj worker processes, each loading the
# libraries and compiled code once instead of once per command: ~1.5 s of CPU per decode-commands)
# and writes the stamps of those that succeeded; if any failed, it exits 1 once all have ended
# (their errors are in the output), as pool_wait does. The queued steps must not read each other's
# outputs. Other steps (shell functions) run at once, as outside a batch. The queue is a temporary dir
# that an EXIT trap removes when the recipe ends between step_batch_begin and step_batch_end (a failed
# step under set -e, a kill): during the batch the EXIT trap removes it and then runs the recipe's own
# EXIT trap, if it had one, and step_batch_end puts the recipe's trap back (or none).
_stamp_batch=
_stamp_batch_stamps=()
_stamp_batch_tmp=  # the queue's dir until step_batch_end has removed it (what the EXIT trap removes)
_stamp_batch_trap=  # the recipe's EXIT trap as `trap -p EXIT` printed it at step_batch_begin (empty: none)

_stamp_batch_discard() { [ -z "$_stamp_batch_tmp" ] || rm -rf "$_stamp_batch_tmp"; }

_stamp_trap_command() { eval "set -- $1"; printf '%s' "${3:-}"; }  # "trap -- 'CMD' EXIT" -> CMD

step_batch_begin() {
  local recipe_trap
  _stamp_batch=$(mktemp -d "${TMPDIR:-/tmp}/kaldilite-steps.XXXXXX")
  _stamp_batch_tmp=$_stamp_batch
  _stamp_batch_stamps=()
  _stamp_batch_trap=$(trap -p EXIT)
  recipe_trap=$(_stamp_trap_command "$_stamp_batch_trap")
  trap "_stamp_batch_discard${recipe_trap:+; $recipe_trap}" EXIT
}

step_batch_end() {
  local dir=$_stamp_batch n line code failed=false outputs=()
  _stamp_batch=
  [ -n "$dir" ] || return 0
  if [ ${#_stamp_batch_stamps[@]} -gt 0 ]; then
    kaldilite run-many --nj "${nj:-1}" --status "$dir/status" "$dir/commands" || true
    n=0
    while read -r line code; do
      if [ "$code" = 0 ]; then
        mapfile -t outputs < "$dir/$n.outputs"
        [ -n "${outputs[0]:-}" ] || outputs=()
        _stamp_write "${_stamp_batch_stamps[$n]}" "$(cat "$dir/$n.head")"
      else
        failed=true
      fi
      n=$((n + 1))
    done < "$dir/status" 2>/dev/null || failed=true
    [ $n -eq ${#_stamp_batch_stamps[@]} ] || failed=true
  fi
  rm -rf "$dir"
  _stamp_batch_tmp=
  if [ -n "$_stamp_batch_trap" ]; then eval "$_stamp_batch_trap"; else trap - EXIT; fi
  _stamp_batch_stamps=()
  [ $failed = false ] || { echo "$0: a step run in a batch failed (its error is above)" >&2; exit 1; }
}
