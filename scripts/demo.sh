#!/bin/sh
# `make run`: hermes-s6's main job on a built-in default, in a sandbox.
# A real s6-svscan supervises a temporary scandir (inside a private PID
# namespace when root, so nothing can outlive the demo); hermes-s6 registers
# and starts the default profile with the stand-in gateway, prints `status`
# and the banner read back from the rotated, timestamped log, then tears
# everything down.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
root=$(mktemp -d "${TMPDIR:-/tmp}/hermes-s6-demo.XXXXXX")
trap 'rm -rf "$root"' EXIT INT TERM

if [ "$(id -u)" -eq 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
  echo "demo: private PID namespace, sandbox $root" >&2
  unshare --pid --fork --mount-proc "$repo/scripts/demo-tree.sh" "$repo" "$root"
else
  echo "demo: not root (or no PID namespaces): plain child processes, sandbox $root" >&2
  "$repo/scripts/demo-tree.sh" "$repo" "$root"
fi
