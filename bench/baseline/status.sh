#!/bin/sh
# status.sh — the POSIX sh baseline of `hermes-s6 status` and `hermes-s6
# health` over a whole tree: one `s6-svstat -o FIELDS DIR` per slot of the
# scandir (every service directory s6-svscan supervises there), in order,
# each line prefixed with the slot's name. This is the least a shell status
# or health check can do with the s6 tools: no desired state, no run-state,
# no judgement, only the state of every slot.
set -eu
scandir=${HERMES_S6_SCANDIR:?HERMES_S6_SCANDIR is not set}
s6bin=${HERMES_S6_BIN:-/usr/bin}
fields=up,wantedup,normallyup,ready,pid,exitcode,signal,updownfor
for d in "$scandir"/*/; do
  d=${d%/}
  printf '%s ' "${d##*/}"
  "$s6bin/s6-svstat" -o "$fields" "$d"
done
