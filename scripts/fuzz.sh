#!/bin/sh
# `make fuzz`: every fuzz target for FUZZTIME each (default 60s; CI uses 10s).
# New crashers land in the package's testdata/fuzz/ as seed corpus: commit them
# with the fix.
set -eu
cd "$(dirname "$0")/.."
t=${FUZZTIME:-60s}
grep -rhoE '^func Fuzz[A-Za-z0-9_]+' --include='*_test.go' . | sed 's/^func //' | sort -u |
  while read -r target; do
    pkg=$(grep -rlE "^func $target\(" --include='*_test.go' . | head -n 1 | xargs dirname)
    echo "fuzz: $target in $pkg for $t" >&2
    go test "$pkg" -run '^$' -fuzz "^$target\$" -fuzztime "$t" </dev/null
  done
