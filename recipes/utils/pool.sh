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
#
# A TERM, INT or HUP to the recipe's shell while it has pooled commands (a plain `kill` of bash, a CI
# timeout, a job scheduler) ends them and every process they started, then the recipe, by that signal;
# before, bash died alone and the steps ran on as orphans, each writing its stamp when it finished
# (Ctrl-C signals the whole process group, so its steps always got it). pool_start sets the handler in
# the shell that pools (a pooled function that pools sets its own), pool_wait puts the shell's own traps
# back. The handler finds the processes by their parent links (ps) and stops them (SIGSTOP) until no new
# one appears, so that none starts another in between, then sends them SIGTERM and SIGCONT and waits for
# its commands. A shell busy with a command of its own when the signal comes (not waiting in pool_start or
# pool_wait) runs the handler when that command has ended, as bash runs any trap.

if ((BASH_VERSINFO[0] > 5 || (BASH_VERSINFO[0] == 5 && BASH_VERSINFO[1] >= 1))); then
  pool_wait_any=true
else
  pool_wait_any=false
fi

pool_pids=()
pool_commands=()  # the command line of each of pool_pids, for the failure's message
_pool_trap_shell=  # the shell ($BASHPID) in which pool_start set the signal handler (empty: none set)
_pool_saved_traps=  # that shell's own TERM/INT/HUP traps then, as `trap -p` printed them

_pool_tree() {  # SHELL PID...: those PIDs that are SHELL's children (a finished step's pid may be reused),
  # and all their descendants, by ps's parent links; sorted
  local shell=$1
  shift
  ps -A -o pid= -o ppid= 2>/dev/null | awk -v shell="$shell" -v roots="$*" '
    { parent[$1] = $2 }
    END {
      n = split(roots, r, " ")
      for (i = 1; i <= n; i++) if (parent[r[i]] == shell) keep[r[i]] = 1
      do {
        added = 0
        for (p in parent) if (!(p in keep) && (parent[p] in keep)) { keep[p] = 1; added = 1 }
      } while (added)
      for (p in keep) print p
    }' | sort -n
}

_pool_signal() {  # SIGNAL: the shell got it while it had pooled commands: end them and theirs, then the shell
  local sig=$1 shell=$BASHPID pids before=- rounds=0
  trap '' TERM INT HUP  # a second signal does not interrupt this
  if [ ${#pool_pids[@]} -gt 0 ]; then
    pids=$(_pool_tree "$shell" "${pool_pids[@]}")
    while [ -n "$pids" ] && [ "$pids" != "$before" ] && [ $rounds -lt 20 ]; do  # stopped until none is new
      before=$pids
      rounds=$((rounds + 1))
      kill -STOP $pids 2>/dev/null || true
      pids=$(_pool_tree "$shell" "${pool_pids[@]}")
    done
    if [ -n "$pids" ]; then
      kill -TERM $pids 2>/dev/null || true
      kill -CONT $pids 2>/dev/null || true
    fi
    wait "${pool_pids[@]}" 2>/dev/null || true
  fi
  pool_pids=()
  pool_commands=()
  _pool_untrap
  kill -s "$sig" "$shell"  # the recipe ends by the signal it got (its EXIT trap runs), or its own trap runs
  exit $((128 + $(kill -l "$sig")))  # (which did not end it)
}

_pool_trap() {  # pool_start: the handler, set once in each shell that pools
  [ "$_pool_trap_shell" != "$BASHPID" ] || return 0
  # (a pooled subshell's `trap -p` may show the handler its parent set, which is not its own)
  _pool_saved_traps=$(trap -p TERM INT HUP | grep -v '_pool_signal' || true)
  _pool_trap_shell=$BASHPID
  trap '_pool_signal TERM' TERM
  trap '_pool_signal INT' INT
  trap '_pool_signal HUP' HUP
}

_pool_untrap() {  # the shell's own TERM/INT/HUP traps back (none: the default)
  [ "$_pool_trap_shell" = "$BASHPID" ] || return 0
  trap - TERM INT HUP
  eval "$_pool_saved_traps"
  _pool_trap_shell=
}

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
  _pool_trap
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
  _pool_untrap
  [ $failed = false ] || exit 1
}
