#!/bin/sh
# reconcile.sh — the POSIX sh baseline of `hermes-s6 reconcile` (docs/reconcile.md) as
# the pre-hermes-s6 boot hook did it: a loop over the profiles that
# registers each slot the way register.sh does (staging dir, rename,
# s6-svscanctl -a, wait until s6-supervise listens), without `down` when the
# profile's desired state is running so s6-supervise starts it on pickup.
# Then the dashboard slot (down unless HERMES_DASHBOARD is truthy). One boot
# log line per slot, to $HERMES_HOME/logs/container-boot.log and stdout.
#
# Like hermes-s6 it leaves an existing slot's files alone (it only syncs the
# down file), skips invalid or SOUL.md-less profile directories with a
# warning, removes stale gateway.pid/processes.json and staging leftovers.
# Its JSON reading is a pattern match, not a parser: enough for the state
# files the benchmark writes.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "${0%/*}/lib.sh"

"$s6bin/s6-svscanctl" -a "$scandir" 2>/dev/null || echo "baseline: warning: no s6-svscan on $scandir" >&2
chmod 0711 "$scandir/.s6-svscan"
for d in "$scandir"/.hermes-s6-staging.* "$scandir"/.hermes-s6-removing.*; do
  if [ -e "$d" ]; then rm -rf "$d"; fi
done

now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
bootlog="$home/logs/container-boot.log"
if [ ! -d "$home/logs" ]; then mkdir -p "$home/logs"; fi
if [ -f "$bootlog" ] && [ "$(wc -c <"$bootlog")" -ge 262144 ]; then mv -f "$bootlog" "$bootlog.1"; fi

say() {
  printf '%s\n' "$now $*" >>"$bootlog"
  printf '%s\n' "$now $*"
}

bom=$(printf '\357\273\277')

# read_state FILE: sets prior to running, stopped, none or corrupt.
read_state() {
  if [ ! -e "$1" ]; then
    prior=none
    return
  fi
  json=''
  while IFS= read -r l || [ -n "$l" ]; do json="$json$l"; done <"$1"
  json=${json#"$bom"}
  case $json in
    '{'*'}') ;;
    *)
      prior=corrupt
      return
      ;;
  esac
  for key in desired_state gateway_state; do
    case $json in
      *"\"$key\""*) ;;
      *) continue ;;
    esac
    v=${json#*\""$key"\"}
    v=${v#"${v%%[!	 :]*}"}
    v=${v#\"}
    v=${v%%\"*}
    case $key:$v in
      *:running | gateway_state:draining | gateway_state:degraded) prior=running ;;
      *:stopped) prior=stopped ;;
      gateway_state:*) prior=stopped ;;
      *) prior=corrupt ;;
    esac
    return
  done
  prior=none
}

# reconcile_slot NAME DOWN WRITER ARGS...: install NAME (built by WRITER
# ARGS... into the staging dir) unless it exists, else sync its down file.
reconcile_slot() {
  name=$1 dn=$2
  shift 2
  if [ -d "$scandir/$name" ]; then
    if [ "$dn" = 1 ]; then
      [ -e "$scandir/$name/down" ] || : >"$scandir/$name/down"
    elif [ -e "$scandir/$name/down" ]; then
      rm -f "$scandir/$name/down"
    fi
    return
  fi
  stage_dir "$name"
  trap 'rm -rf "$stage"' EXIT
  "$@"
  install "$name"
  trap - EXIT
  pickup "$scandir/$name"
}

# profile P DIR: reconcile one gateway profile whose data lives in DIR.
profile() {
  read_state "$2/gateway_state.json"
  if [ "$prior" = running ]; then dn=0 action=started; else dn=1 action=registered; fi
  stage_dir "gateway-$1"
  reconcile_slot "gateway-$1" "$dn" gateway_slot "$stage" "$1" "$dn"
  for f in "$2/gateway.pid" "$2/processes.json"; do
    if [ -e "$f" ]; then rm -f "$f"; fi
  done
  say "profile=$1 prior_state=$prior action=$action"
}

profile default "$home"
for d in "$home"/profiles/*/; do
  [ -d "$d" ] || continue
  d=${d%/}
  p=${d##*/}
  if ! valid_name "$p" || [ "$p" = default ] || [ ! -f "$d/SOUL.md" ]; then
    echo "baseline: warning: skipping $d (invalid name, reserved, or no SOUL.md)" >&2
    continue
  fi
  profile "$p" "$d"
done

case ${HERMES_DASHBOARD:-} in
  1 | [Tt][Rr][Uu][Ee] | [Yy][Ee][Ss]) dn=0 action=started ;;
  *) dn=1 action=registered ;;
esac
stage_dir dashboard
reconcile_slot dashboard "$dn" write_slot "$stage" dashboard dashboard "hermes-s6 reconcile" logs/dashboard "$dn" \
  "$hermes" dashboard --host "${HERMES_DASHBOARD_HOST:-127.0.0.1}" --port "${HERMES_DASHBOARD_PORT:-9119}" --no-open
say "slot=dashboard action=$action"
