#!/usr/bin/env bash
# A pool of at most $nj background commands, for a recipe stage whose steps are independent
# (Kaldi's run.pl runs the jobs of one step in parallel; this runs several steps at once).
#
#   pool_start COMMAND [ARG...]   # starts it once fewer than $nj started ones are still running
#   pool_wait                     # waits for all of them
#
# pool_start waits for ANY running command to finish (`wait -n -p`, bash >= 5.1: Debian 12's
# bash is 5.2), not for the oldest, so one long step never holds the other slots idle; an older
# bash (macOS ships 3.2) waits for the oldest instead: slower, same results. A failed command ends
# the recipe (exit 1) once the others have finished, with a line naming it and its exit status (its
# error is in its own output, which the other steps' output may follow: they share the log).

if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
  pool_wait_any=true
else
  pool_wait_any=false
fi

pool_pids=()
pool_commands=()  # the command line of each of pool_pids, for the failure's message

_pool_failed() {  # STATUS COMMAND-LINE: the line saying which started command failed
  local text=$2
  [ ${#text} -le 300 ] || text="${text:0:300} ..."
  echo "$0: a step run in parallel failed (exit $1): $text (its error is above)" >&2
}

pool_start() {
  if [ ${#pool_pids[@]} -ge "$nj" ]; then
    local finished= status=0 pid still=()
    # A command that has already ended may have left bash's job table (a shell that is not
    # interactive moves finished jobs out of it, e.g. under `bash -c 'source run.sh'`), where
    # `wait -n` no longer sees it ("no such job") but `wait PID` still returns its status.
    for pid in "${pool_pids[@]}"; do
      if ! kill -0 "$pid" 2>/dev/null; then finished=$pid; wait "$pid" || status=$?; break; fi
    done
    if [ -z "$finished" ] && [ $pool_wait_any = true ]; then
      wait -n -p finished "${pool_pids[@]}" 2>/dev/null || status=$?
    fi
    if [ -z "$finished" ]; then  # an older bash, or every command ended in between: the oldest
      status=0
      finished=${pool_pids[0]}
      wait "$finished" || status=$?
    fi
    local i command= still_commands=()
    for i in "${!pool_pids[@]}"; do
      if [ "${pool_pids[$i]}" = "$finished" ]; then
        command=${pool_commands[$i]}
      else
        still+=("${pool_pids[$i]}")
        still_commands+=("${pool_commands[$i]}")
      fi
    done
    pool_pids=("${still[@]}")
    pool_commands=("${still_commands[@]}")
    if [ $status -ne 0 ]; then
      _pool_failed $status "$command"
      pool_wait  # exits 1 itself, naming them, when other steps failed too
      exit 1
    fi
  fi
  "$@" &
  pool_pids+=($!)
  pool_commands+=("$*")
}

pool_wait() {  # fails (exit 1) if any started command failed, naming each
  local i status failed=false
  for i in "${!pool_pids[@]}"; do
    status=0
    wait "${pool_pids[$i]}" || status=$?
    if [ $status -ne 0 ]; then _pool_failed $status "${pool_commands[$i]}"; failed=true; fi
  done
  pool_pids=()
  pool_commands=()
  [ $failed = false ] || exit 1
}
