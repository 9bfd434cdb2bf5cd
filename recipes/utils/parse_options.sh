#!/usr/bin/env bash
# Shared option parser for kaldilite recipes, with the conventions of Kaldi's
# utils/parse_options.sh: `--foo-bar VALUE` or `--foo-bar=VALUE` sets the shell variable
# foo_bar, which the recipe must have defined before sourcing this file; `--config FILE` is
# read first (lines `foo_bar=value`); booleans are `true`/`false`; `--help` prints the
# recipe's $help_message. Parsing stops at the first argument that is not an option; the
# remaining arguments are left in "$@".
#
# Usage inside a recipe:  stage=0; nj=2; . "$(dirname "$0")/../utils/parse_options.sh"

_kl_args=("$@")
for ((_kl_i = 0; _kl_i < ${#_kl_args[@]}; _kl_i++)); do
  if [ "${_kl_args[$_kl_i]}" = "--config" ]; then
    _kl_conf="${_kl_args[$((_kl_i + 1))]:-}"
    [ -f "$_kl_conf" ] || { echo "$0: --config: no such file: $_kl_conf" >&2; exit 1; }
    # shellcheck disable=SC1090
    . "$_kl_conf"
  fi
done
unset _kl_args _kl_i _kl_conf

while [ $# -gt 0 ]; do
  case "$1" in
    --help|-h)
      echo "${help_message:-no help for $0}"; exit 0 ;;
    --config)
      shift 2; continue ;;
    --*=*)
      _kl_name="${1%%=*}"; _kl_value="${1#*=}"; shift ;;
    --*)
      _kl_name="$1"
      if [ $# -lt 2 ]; then echo "$0: option $1 needs a value" >&2; exit 1; fi
      _kl_value="$2"; shift 2 ;;
    *)
      break ;;
  esac
  _kl_var="${_kl_name#--}"; _kl_var="${_kl_var//-/_}"
  if ! declare -p "$_kl_var" >/dev/null 2>&1 || [[ ! "$_kl_var" =~ ^[a-z_][a-z0-9_]*$ ]]; then
    echo "$0: unknown option $_kl_name (run $0 --help for the options)" >&2; exit 1
  fi
  _kl_old="${!_kl_var}"
  if [ "$_kl_old" = "true" ] || [ "$_kl_old" = "false" ]; then
    if [ "$_kl_value" != "true" ] && [ "$_kl_value" != "false" ]; then
      echo "$0: option $_kl_name takes true or false, not '$_kl_value'" >&2; exit 1
    fi
  fi
  printf -v "$_kl_var" '%s' "$_kl_value"
done
unset _kl_name _kl_value _kl_var _kl_old
true
