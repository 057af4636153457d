# shellcheck shell=sh
# shellcheck disable=SC2016 # the scripts written here expand at run time
# The POSIX sh baseline that `make bench` races hermes-s6 against: what a
# careful pre-hermes-s6 shell implementation does with the s6 tools alone.
# Sourced by register.sh and reconcile.sh; reads the same environment as
# hermes-s6 (HERMES_S6_SCANDIR, HERMES_HOME, HERMES_S6_BIN,
# HERMES_S6_GATEWAY_BIN, HERMES_S6_SHEBANG, HERMES_DASHBOARD_HOST/PORT; no
# service account), and BASELINE_HERMES_S6, the hermes-s6 path the
# dashboard's readiness check runs (the harness sets it).
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
# The dashboard's readiness check runs hermes-s6's probe: the path hermes-s6
# renders into data/check, and the address it probes.
self=${BASELINE_HERMES_S6:-hermes-s6}
notify=${HERMES_DASHBOARD_HOST:-127.0.0.1}:${HERMES_DASHBOARD_PORT:-9119}

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
# of a slot (run, finish, log/run, type, notification-fd, log/notification-fd,
# data/check for the dashboard, down when DOWN is 1) in DIR.
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
  tool s6-log
  s6log=$Q
  tool s6-svstat
  svstat=$Q
  tool s6-svwait
  svwait=$Q
  tool s6-setlock
  setlock=$Q
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
    "# The lease (docs/scale-out.md): the $kind starts only once this slot's" \
    "# logger holds the profile's lease on the volume (it is then ready). In a" \
    '# second container on the same volume this waits, marked by ./lease-wait,' \
    "# until the holder's logger exits; s6-svc -d ends the wait at once." \
    ': >lease-wait' \
    "trap 'kill \"\$pause\" 2>/dev/null; rm -f lease-wait; exit 143' TERM" \
    'while :; do' \
    "  $svwait -U log 2>/dev/null &" \
    '  pause=$!' \
    '  if wait "$pause"; then break; fi' \
    '  # The logger is not supervised yet (a new slot): look again shortly.' \
    '  sleep 0.1 &' \
    '  pause=$!' \
    '  wait "$pause" || :' \
    'done' \
    'trap - TERM' \
    'rm -f lease-wait' >"$d/run"
  if [ "$kind" = gateway ]; then
    printf '%s\n' \
      '# Ready, as far as s6 can tell (notification-fd): past the backoff, holding' \
      '# the lease, about to start. The gateway has no readiness protocol of its own.' \
      '{ echo >&3; } 2>/dev/null || :' \
      'exec 3>&-' >>"$d/run"
  fi
  printf '%s\n' \
    '' \
    "HERMES_HOME=\${HERMES_HOME:-$qhome}" \
    'HOME=$HERMES_HOME' \
    'export HERMES_HOME HOME' >>"$d/run"
  if [ "$kind" = gateway ]; then
    printf '%s\n' \
      '# Held by the gateway itself while it runs: two gateways of one profile never' \
      "# overlap, even if a logger dies and another container's takes the lease." \
      "gateway_lock=\"\$HERMES_HOME\"/$qlogsub/gateway.lock" \
      'cd "$HERMES_HOME"' >>"$d/run"
  fi
  printf '%s\n' \
    '# Recursion guard: a `gateway run` started from here stays in the foreground.' \
    'export HERMES_S6_SUPERVISED_CHILD=1' \
    '' \
    '# stderr joins stdout so both reach the logger (log/run).' \
    'exec 2>&1' \
    '' >>"$d/run"
  if [ "$kind" = gateway ]; then
    printf '%s\n' "exec $setlock \"\$gateway_lock\"$cmd" >>"$d/run"
  else
    tool s6-notifyoncheck
    notifier=$Q
    quote "$notify"
    qnotify=$Q
    printf '%s\n' \
      "# Readiness: s6-notifyoncheck polls ./data/check (HTTP on $notify) and" \
      '# tells s6 through ./notification-fd. It must run in the slot directory, so' \
      '# the dashboard keeps it as its working directory.' \
      '' \
      "exec $notifier -d -s 100 -w 1000 -t 2000 -n 0$cmd" >>"$d/run"
    mkdir -p "$d/data"
    quote "$self"
    printf '%s\n' "$shebang" \
      "# hermes-s6 readiness check for slot $name: generated file, do not edit." \
      '# s6-notifyoncheck runs it until it exits 0: the dashboard answers HTTP on' \
      "# $notify. The probe runs as the service account: root reads nothing" \
      '# the account serves. It runs every second until the dashboard answers, so' \
      '# its complaints would flood the log: they are dropped (status and health' \
      '# say when the dashboard is not ready).' \
      "exec $Q probe --http $qnotify 2>/dev/null" >"$d/data/check"
    chmod 0755 "$d/data/check"
  fi
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
    '#' \
    '# One logger per log directory across every container on the volume' \
    '# (docs/scale-out.md): the logger takes the lease, $log_dir/lease, with' \
    '# s6-setlock and keeps it while it runs; another container'"'"'s logger waits' \
    "# there, silent, and its $kind waits on it. Holding it, this script runs" \
    '# again ("leased") to record the holder beside the lock, then becomes' \
    "# s6-log. s6-log's own lock is an flock: a leftover file blocks nothing and" \
    '# is never deleted. s6-log -d 3 tells s6 it is ready once it has the log' \
    '# directory (log/notification-fd).' \
    'set -e' \
    '' \
    "HERMES_HOME=\${HERMES_HOME:-$qhome}" \
    "log_dir=\"\$HERMES_HOME\"/$qlogsub" \
    '' \
    'case ${1-} in' \
    'leased)' \
    '  # A lock s6-log could not use (a symlink, or not a regular file this' \
    "  # account may write: root's, left by an older image) goes; s6-log makes" \
    '  # a fresh one.' \
    '  lock=$log_dir/lock' \
    '  if [ -L "$lock" ] || { [ -e "$lock" ] && { [ ! -f "$lock" ] || [ ! -w "$lock" ]; }; }; then' \
    '    rm -f "$lock"' \
    '  fi' \
    '  # Who holds the lease, for status in every container: this process (it' \
    '  # becomes s6-log), its host, and its container, which boot reconcile' \
    "  # recorded. The record's file time says since when." \
    "  host='' container=''" \
    '  read -r host </proc/sys/kernel/hostname || :' \
    "  case \$host in *[!A-Za-z0-9._-]*) host='' ;; esac" \
    '  read -r container 2>/dev/null <"${HERMES_S6_RUNTIME_DIR:-/run/hermes-s6}"/container || :' \
    "  case \$container in *[!0-9a-f]*) container='' ;; esac" \
    "  printf '{\"host\":\"%s\",\"container\":\"%s\",\"pid\":%d}\\n' \"\$host\" \"\$container\" \"\$\$\" >\"\$log_dir/holder.new\"" \
    '  mv -f "$log_dir/holder.new" "$log_dir/holder"' \
    "  exec $s6log -d 3 1 n10 s1000000 T \"\$log_dir\"" \
    '  ;;' \
    'esac' \
    '' \
    '[ -d "$log_dir" ] || mkdir -p "$log_dir"' \
    "exec $setlock \"\$log_dir/lease\" sh ./run leased" >"$d/log/run"
  printf 'longrun\n' >"$d/type"
  printf '3\n' >"$d/notification-fd"
  printf '3\n' >"$d/log/notification-fd"
  if [ "$down" = 1 ]; then : >"$d/down"; fi
  chmod 0755 "$d/run" "$d/finish" "$d/log/run"
}

# tool NAME: sets Q to the s6 tool NAME as hermes-s6 renders it.
tool() {
  if [ -n "$s6bin" ]; then quote "$s6bin/$1"; else Q=$1; fi
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
