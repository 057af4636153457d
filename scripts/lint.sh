#!/bin/sh
# gofmt, go vet, staticcheck and shellcheck: the checks every change passes.
set -eu
cd "$(dirname "$0")/.."

GO=${GO:-go}
STATICCHECK_VERSION=v0.8.2

unformatted=$(find . -name '*.go' -not -path './.cache/*' -print0 | xargs -0 gofmt -l)
if [ -n "$unformatted" ]; then
  echo "lint: gofmt would change:" "$unformatted" >&2
  exit 1
fi
if ! "$GO" mod tidy -diff >/dev/null 2>&1; then
  echo "lint: go.mod/go.sum are not tidy: run go mod tidy" >&2
  "$GO" mod tidy -diff >&2 || true
  exit 1
fi
"$GO" vet ./...
"$GO" vet -tags e2e ./...
gobin=$("$GO" env GOPATH)/bin
if [ ! -x "$gobin/staticcheck" ] || ! "$gobin/staticcheck" -version 2>/dev/null | grep -q "${STATICCHECK_VERSION#v}"; then
  GOFLAGS='' "$GO" install "honnef.co/go/tools/cmd/staticcheck@$STATICCHECK_VERSION"
fi
"$gobin/staticcheck" ./...
"$gobin/staticcheck" -tags e2e ./...

# Shipped and helper shell scripts (rendered scripts are checked by go test).
# POSIX ones (including s6-overlay's with-contenv sh) are checked as sh.
set -- scripts rootfs tests .ci bench
sh_scripts=$(grep -rlE '^#!(/bin/sh|/command/with-contenv sh|/usr/bin/env sh)' "$@" 2>/dev/null || true)
bash_scripts=$(grep -rlE '^#!(/bin/bash|/usr/bin/env bash)' "$@" 2>/dev/null || true)
# shellcheck disable=SC2086 # one word per path
[ -z "$sh_scripts" ] || shellcheck -x -s sh $sh_scripts
# shellcheck disable=SC2086 # one word per path
[ -z "$bash_scripts" ] || shellcheck -x $bash_scripts
echo "lint: ok" >&2
