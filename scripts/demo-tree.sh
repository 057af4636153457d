#!/bin/sh
# The inside of `make run` (see demo.sh): $1 is the repo, $2 the sandbox.
set -eu
repo=$1 root=$2
export HERMES_S6_SCANDIR="$root/service" HERMES_HOME="$root/home"
export HERMES_S6_ACCOUNT='' HERMES_S6_SHEBANG='#!/bin/sh'
export HERMES_S6_GATEWAY_BIN="$repo/bin/hermes-standin"
PATH="$repo/bin:$PATH"
mkdir -p "$HERMES_S6_SCANDIR" "$HERMES_HOME"

# await CONDITION-COMMAND...: poll every 0.1 s, give up after 10 s.
await() {
  i=0
  until "$@"; do
    i=$((i + 1))
    if [ "$i" -ge 100 ]; then
      echo "demo: timed out waiting for: $*" >&2
      exit 1
    fi
    sleep 0.1
  done
}
has_banner() { grep -q 'Hermes Gateway Starting' "$HERMES_HOME/logs/gateways/default/current" 2>/dev/null; }
tree_gone() { ! kill -0 "$svscan" 2>/dev/null; }

s6-svscan "$HERMES_S6_SCANDIR" >"$root/container-stdout.log" 2>&1 &
svscan=$!
stop_tree() {
  s6-svscanctl -t "$HERMES_S6_SCANDIR" 2>/dev/null || kill "$svscan" 2>/dev/null || true
  await tree_gone
}
trap stop_tree EXIT INT TERM
await test -p "$HERMES_S6_SCANDIR/.s6-svscan/control"

echo "\$ hermes-s6 register --profile default --start"
hermes-s6 register --profile default --start
echo
echo "\$ hermes-s6 status"
hermes-s6 status
await has_banner
echo
echo "\$ cat \$HERMES_HOME/logs/gateways/default/current   # ISO 8601 stamps"
cat "$HERMES_HOME/logs/gateways/default/current"
echo
echo "container stdout (what docker logs would show, raw):"
sed 's/^/  | /' "$root/container-stdout.log"
echo
echo "\$ hermes-s6 stop --profile default"
hermes-s6 stop --profile default
hermes-s6 status
