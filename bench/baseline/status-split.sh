#!/bin/sh
# status-split.sh N — status.sh's loop over the same slots, dealt out to N
# POSIX sh loops run side by side (slot i to loop i mod N). It is what
# hermes-s6's own way of running a tree's s6-svstats (one sh loop per CPU,
# s6.Tools.Statuses) costs without hermes-s6: the floor of rows 5a/5b's
# approach, against the single loop of status.sh.
set -eu
scandir=${HERMES_S6_SCANDIR:?HERMES_S6_SCANDIR is not set}
s6bin=${HERMES_S6_BIN:-/usr/bin}
n=${1:?usage: status-split.sh N}
fields=up,wantedup,normallyup,ready,pid,exitcode,signal,updownfor
k=0
while [ "$k" -lt "$n" ]; do
  (
    i=0
    for d in "$scandir"/*/; do
      i=$((i + 1))
      [ $((i % n)) -eq "$k" ] || continue
      d=${d%/}
      printf '%s ' "${d##*/}"
      "$s6bin/s6-svstat" -o "$fields" "$d"
    done
  ) &
  k=$((k + 1))
done
wait
