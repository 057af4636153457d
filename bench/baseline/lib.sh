# shellcheck shell=sh
# shellcheck disable=SC2016 # the scripts written here expand at run time
# The POSIX sh baseline that `make bench` races hermes-s6 against: what a
# careful pre-hermes-s6 shell implementation does with the s6 tools alone.
# Sourced by register.sh and reconcile.sh; reads the same environment as
# hermes-s6 (HERMES_S6_SCANDIR, HERMES_HOME, HERMES_S6_BIN,
# HERMES_S6_GATEWAY_BIN, HERMES_S6_SHEBANG; no service account).
#
# It renders byte-for-byte the files hermes-s6 renders for a slot without a
# service account (the harness checks that), with printf builtins only: the
# forks left are the ones a shell cannot avoid (mkdir, chmod, mv and the s6
# tools). It does not fsync; hermes-s6 does (a no-op on the tmpfs scandir).

LC_ALL=C
export LC_ALL
umask 022

scandir=${HERMES_S6_SCANDIR:?HERMES_S6_SCANDIR is not set}
home=${HERMES_HOME:?HERMES_HOME is not set}
s6bin=${HERMES_S6_BIN:-/usr/bin}
hermes=${HERMES_S6_GATEWAY_BIN:-hermes}
shebang=${HERMES_S6_SHEBANG:-'#!/bin/sh'}

die() {
  code=$1
  shift
  echo "baseline: error: $*" >&2
  exit "$code"
}

# valid_name NAME: ^[a-z0-9][a-z0-9_-]*$, at most 64 bytes (docs/slot.md: Profile names).
valid_name() {
  case $1 in
    '' | [!a-z0-9]* | *[!a-z0-9_-]*) return 1 ;;
  esac
  [ "${#1}" -le 64 ]
}

# quote WORD: sets Q to WORD as one sh word, bare when it holds nothing
# special (templates.Quote's rule), else single-quoted. It sets a variable
# rather than printing because $(...) would cost a fork per word.
quote() {
  case $1 in
    '' | *[!A-Za-z0-9_@%+=:,./-]*)
      Q='' rest=$1
      while :; do
        case $rest in
          *\'*) Q="$Q${rest%%\'*}'\\''" rest=${rest#*\'} ;;
          *) break ;;
        esac
      done
      Q="'$Q$rest'"
      ;;
    *) Q=$1 ;;
  esac
}

# write_slot DIR NAME KIND REGENERATE LOGSUBDIR DOWN COMMAND...: the files
# of a slot (run, finish, log/run, type, down when DOWN is 1) in DIR.
write_slot() {
  d=$1 name=$2 kind=$3 regen=$4 logsub=$5 down=$6
  shift 6
  cmd=''
  for w; do
    quote "$w"
    cmd="$cmd $Q"
  done
  quote "$home"
  qhome=$Q
  quote "$logsub"
  qlogsub=$Q
  if [ -n "$s6bin" ]; then quote "$s6bin/s6-log"; else Q=s6-log; fi
  s6log=$Q
  if [ -n "$s6bin" ]; then quote "$s6bin/s6-svstat"; else Q=s6-svstat; fi
  svstat=$Q
  mkdir -p "$d/log"
  printf '%s\n' "$shebang" \
    "# hermes-s6 $kind slot $name: generated file, do not edit." \
    "# Re-render with: $regen" \
    'set -e' \
    '' \
    '# Crash backoff (docs/slot.md). finish keeps ./run-state as "started died' \
    '# deaths delay": epoch seconds, the quick deaths in a row, the wait they' \
    "# earned. The wait happens here, before the $kind starts, never in finish:" \
    '# s6-svc -d ends it at once, so stop and restart never wait on a backoff.' \
    '# s6 restarts a dead service within a second or so; a start later than 3 s' \
    '# after the death was asked for by someone, and does not wait.' \
    'now=$(date +%s)' \
    'died=0 deaths=0 delay=0' \
    '[ ! -f run-state ] || read -r _ died deaths delay <run-state || :' \
    "case \$died in '' | *[!0-9]*) died=0 ;; esac" \
    "case \$delay in '' | *[!0-9]*) delay=0 ;; esac" \
    'if [ "$delay" -gt 0 ] && [ $((now - died)) -lt 3 ]; then' \
    "  echo \"hermes-s6: $name died \$deaths times in a row: backing off, next try in \${delay}s\"" \
    "  trap 'kill \"\$pause\" 2>/dev/null; exit 143' TERM" \
    '  sleep "$delay" &' \
    '  pause=$!' \
    '  wait "$pause" || :' \
    '  trap - TERM' \
    '  now=$((now + delay))' \
    'fi' \
    'echo "$now $died $deaths 0" >run-state || :' \
    '' \
    "HERMES_HOME=\${HERMES_HOME:-$qhome}" \
    'HOME=$HERMES_HOME' \
    'export HERMES_HOME HOME' \
    'cd "$HERMES_HOME"' \
    '# Recursion guard: a `gateway run` started from here stays in the foreground.' \
    'export HERMES_S6_SUPERVISED_CHILD=1' \
    '' \
    '# stderr joins stdout so both reach the logger (log/run).' \
    'exec 2>&1' \
    '' \
    "exec$cmd" >"$d/run"
  printf '%s\n' "$shebang" \
    "# hermes-s6 $kind slot $name: generated file, do not edit." \
    "# \$1 is run's exit code (256 when killed by a signal), \$2 the signal number." \
    '' \
    '# Crash backoff (docs/slot.md): count this death for run, which waits' \
    '# 1, 2, 4 … 60 s before the next start. A clean stop (0), a configuration' \
    '# error (78) and a stop that was asked for (wanted down) reset the count;' \
    '# a death after 60 s up counts as the first.' \
    'now=$(date +%s)' \
    'started=0 deaths=0' \
    '[ ! -f run-state ] || read -r started _ deaths _ <run-state || :' \
    "case \$started in '' | *[!0-9]*) started=0 ;; esac" \
    "case \$deaths in '' | *[!0-9]*) deaths=0 ;; esac" \
    'case "$1" in' \
    '  0 | 78) deaths=0 ;;' \
    '  *)' \
    "    if [ \"\$($svstat -o wantedup . 2>/dev/null)\" = false ]; then" \
    '      deaths=0' \
    '    elif [ $((now - started)) -ge 60 ]; then' \
    '      deaths=1' \
    '    else' \
    '      deaths=$((deaths + 1))' \
    '    fi' \
    '    ;;' \
    'esac' \
    'delay=0' \
    'if [ "$deaths" -gt 0 ]; then' \
    '  delay=1' \
    '  n=$deaths' \
    '  while [ "$n" -gt 1 ] && [ "$delay" -lt 60 ]; do' \
    '    delay=$((delay * 2))' \
    '    n=$((n - 1))' \
    '  done' \
    '  [ "$delay" -le 60 ] || delay=60' \
    'fi' \
    'echo "$started $now $deaths $delay" >run-state || :' \
    '' \
    '# 0 is a deliberate clean stop and 78 a configuration error: a restart cures' \
    '# neither, so exit 125 tells s6-supervise not to restart the service.' \
    'case "$1" in' \
    '  0 | 78) exit 125 ;;' \
    'esac' \
    'exit 0' >"$d/finish"
  printf '%s\n' "$shebang" \
    "# hermes-s6 logger for slot $name: generated file, do not edit." \
    '# Every line goes raw to stdout (the container'"'"'s, so `docker logs` shows it)' \
    '# and, stamped with ISO 8601, to a rotated file under $HERMES_HOME.' \
    'set -e' \
    '' \
    "HERMES_HOME=\${HERMES_HOME:-$qhome}" \
    "log_dir=\"\$HERMES_HOME\"/$qlogsub" \
    '' \
    'mkdir -p "$log_dir"' \
    'rm -f "$log_dir/lock"' \
    "exec $s6log 1 n10 s1000000 T \"\$log_dir\"" >"$d/log/run"
  printf 'longrun\n' >"$d/type"
  if [ "$down" = 1 ]; then : >"$d/down"; fi
  chmod 0755 "$d/run" "$d/finish" "$d/log/run"
}

# gateway_slot DIR PROFILE DOWN: write_slot for a gateway profile.
gateway_slot() {
  if [ "$2" = default ]; then
    set -- "$1" "$2" "$3" "$hermes" gateway run --replace
  else
    set -- "$1" "$2" "$3" "$hermes" -p "$2" gateway run --replace
  fi
  p=$2 dn=$3
  dir=$1
  shift 3
  write_slot "$dir" "gateway-$p" gateway "hermes-s6 register --profile $p" "logs/gateways/$p" "$dn" "$@"
}

# stage_dir NAME: sets stage to the staging dir for slot NAME (a dot-name:
# s6-svscan ignores it).
stage_dir() { stage="$scandir/.hermes-s6-staging.$1.$$"; }

# install NAME: rename the staging dir built for NAME into the scandir.
# mv -T refuses to move into an existing slot instead of nesting inside it.
install() {
  stage_dir "$1"
  mv -T "$stage" "$scandir/$1" || {
    rm -rf "$stage"
    die 1 "cannot install slot $1"
  }
}

# pickup SLOTDIR: tell s6-svscan, then wait until s6-supervise listens.
# The wait polls s6-svok back to back (each poll is a fork+exec, about a
# millisecond): the finest a shell can do without sleep(1)'s own fork.
pickup() {
  "$s6bin/s6-svscanctl" -a "$scandir" || die 4 "no s6-svscan is listening on $scandir"
  n=0
  until "$s6bin/s6-svok" "$1"; do
    n=$((n + 1))
    [ "$n" -lt 20000 ] || die 1 "timed out waiting for s6-supervise on $1"
  done
}
