#!/bin/sh
# `make bench`: side-by-side benchmarks of hermes-s6 on a real s6 tree (see
# bench/main.go for what is measured and README.md "Performance" for how to
# read the table). `make bench` builds bin/ first; this script builds the
# harness and runs it, as root inside a private PID + mount namespace so
# every process it starts dies with it and its scandirs live on a private
# tmpfs. Knobs: BENCH_STRICT=1 (exit 1 on a missed target), BENCH_QUICK=1,
# BENCH_ONLY=status,register,cycle,reconcile,health, BENCH_HOME=disk|tmpfs,
# BENCH_ROUNDS=N.
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

for b in bin/hermes-s6 bin/hermes-standin; do
  if [ ! -x "$b" ]; then
    echo "bench: $b is missing: run \`make bench\` (it builds bin/ first)" >&2
    exit 1
  fi
done
GO=${GO:-go}
CGO_ENABLED=0 "$GO" build -trimpath -o bin/hermes-s6-bench ./bench
CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o bin/hermes-s6-bench-floor ./bench/floor
CGO_ENABLED=0 "$GO" build -trimpath -tags 'benchlinked urfave_cli_no_docs' -ldflags '-s -w' -o bin/hermes-s6-bench-floor-linked ./bench/floor

set -- bin/hermes-s6-bench -hermes-s6 bin/hermes-s6 -standin bin/hermes-standin -baseline bench/baseline -floor bin/hermes-s6-bench-floor -floor-linked bin/hermes-s6-bench-floor-linked -s6-bin /usr/bin
if [ "$(id -u)" -eq 0 ] && unshare --pid --fork --mount-proc true 2>/dev/null; then
  exec unshare --pid --fork --mount-proc "$@"
fi
echo "bench: not root (or no namespaces): running without a private PID namespace; scandirs on /dev/shm" >&2
exec "$@"
