#!/bin/sh
# Container image and end-to-end harness (README: The container image; docs/ARCHITECTURE.md: Tests), called by
# the Makefile:
#
#   scripts/e2e/run.sh base-image   the offline Debian base image
#   scripts/e2e/run.sh e2e-image    the image's e2e stage (stand-in gateway)
#   scripts/e2e/run.sh e2e          e2e-image, then the tests in tests/e2e,
#                                   then the deployments' (deploy/, docs/deploy.md)
#   scripts/e2e/run.sh bench        e2e-image and its floor, then the benchmarks
#   scripts/e2e/run.sh image        the release image; without PyPI, its
#                                   runtime stage (no gateway), said loudly
#
# Every image runs on the real s6-overlay (there is no stand-in). Its
# release tarballs come from, in order: S6_OVERLAY_BASE_URL when set; else
# ../shared/s6-overlay/$S6_OVERLAY_VERSION/ when that folder exists, served
# on 127.0.0.1 for the build (tests/e2e/cmd/servedir); else the GitHub
# release. The Dockerfile checks each tarball against its .sha256; a
# source that does not answer fails the build, never falls back.
#
# When no Docker engine answers it installs docker.io if missing, starts
# dockerd in the background and stops it at the end; it removes every
# container the tests created, also when they fail.
#
# Environment:
#   S6_OVERLAY_VERSION   s6-overlay release (default 3.2.3.2, the Dockerfile's pin)
#   S6_OVERLAY_BASE_URL  where its tarballs are (see above)
#   S6_OVERLAY_DIR       the local folder of tarballs (default
#                        ../shared/s6-overlay/$S6_OVERLAY_VERSION)
#   E2E_BASE_IMAGE       base image (default hermes-s6-base:bookworm, built
#                        offline with mmdebstrap when missing)
#   E2E_IMAGE            tag of the e2e image (default
#                        hermes-s6:e2e-s6-overlay-$S6_OVERLAY_VERSION)
#   E2E_GO_TEST_FLAGS    extra `go test` flags, e.g. '-run TestDockerStop'
#   E2E_DEPLOY_TEST_FLAGS  the same for the deployments' tests, e.g.
#                        '-run TestCompose'; '-run ^$' skips them
#   E2E_PARALLEL         tests run at once (default 3)
#   E2E_BENCH_RUNS       boots per image in the benchmark (default 11)
#   IMAGE_TAG            tag of the release image (default hermes-agent:latest)
#   HERMES_AGENT_VERSION pip version of the gateway in the release image
set -eu

cd "$(dirname "$0")/../.."

GO=${GO:-go}
mode=${1:-e2e}
run_id=$(date +%s)-$$
base=${E2E_BASE_IMAGE:-hermes-s6-base:bookworm}
default_base=hermes-s6-base:bookworm
tmp=$(mktemp -d "${TMPDIR:-/tmp}/hermes-s6-e2e.XXXXXX")
dockerd_pid=
servedir_pid=
s6_version=${S6_OVERLAY_VERSION:-3.2.3.2}

say() { printf 'e2e: %s\n' "$*" >&2; }
die() {
  say "error: $*"
  exit 1
}

# elapsed START: whole seconds since START (date +%s).
elapsed() { echo "$(($(date +%s) - $1))s"; }

cleanup() {
  rc=$?
  set +e
  if docker info >/dev/null 2>&1; then
    ids=$(docker ps -aq --filter "label=hermes-s6-e2e.run=$run_id")
    if [ -n "$ids" ]; then
      # shellcheck disable=SC2086 # one word per id
      docker rm -f -v $ids >/dev/null
      say "removed $(echo "$ids" | wc -l) container(s) of run $run_id"
    fi
    # The deployments' tests also make networks (compose) and volumes (a
    # pod's emptyDirs), labelled the same way.
    for kind in network volume; do
      ids=$(docker "$kind" ls -q --filter "label=hermes-s6-e2e.run=$run_id")
      if [ -n "$ids" ]; then
        # shellcheck disable=SC2086 # one word per id
        docker "$kind" rm $ids >/dev/null
        say "removed $(echo "$ids" | wc -l) $kind(s) of run $run_id"
      fi
    done
  fi
  if [ -n "$servedir_pid" ]; then
    kill "$servedir_pid" 2>/dev/null
  fi
  if [ -n "$dockerd_pid" ]; then
    say "stopping the dockerd this harness started (pid $dockerd_pid)"
    kill "$dockerd_pid" 2>/dev/null
    i=0
    while kill -0 "$dockerd_pid" 2>/dev/null && [ "$i" -lt 300 ]; do
      sleep 0.1
      i=$((i + 1))
    done
  fi
  rm -rf "$tmp"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

apt_install() {
  [ "$(id -u)" -eq 0 ] || die "$* missing and not root: install it (apt-get install $*)"
  say "installing $* with apt-get"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_engine() {
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    return
  fi
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    apt_install docker.io
  fi
  if docker info >/dev/null 2>&1; then
    return
  fi
  say "no Docker engine answers: starting dockerd (log: $tmp/dockerd.log)"
  dockerd >"$tmp/dockerd.log" 2>&1 &
  dockerd_pid=$!
  i=0
  until docker info >/dev/null 2>&1; do
    if ! kill -0 "$dockerd_pid" 2>/dev/null; then
      tail -20 "$tmp/dockerd.log" >&2
      dockerd_pid=
      die "dockerd exited"
    fi
    i=$((i + 1))
    [ "$i" -le 600 ] || die "dockerd did not answer within 60 s"
    sleep 0.1
  done
}

ensure_base_image() {
  if docker image inspect "$base" >/dev/null 2>&1; then
    say "base image $base: present, reused"
    return
  fi
  if [ "$base" != "$default_base" ]; then
    say "base image $base: not present, docker build will pull it"
    return
  fi
  command -v mmdebstrap >/dev/null 2>&1 || apt_install mmdebstrap
  say "base image $base: building offline with mmdebstrap (about 30 s)"
  t0=$(date +%s)
  mmdebstrap --quiet --variant=minbase bookworm "$tmp/base.tar"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' \
    "$tmp/base.tar" "$base" >/dev/null
  rm -f "$tmp/base.tar"
  say "base image $base: built in $(elapsed "$t0")"
}

# s6_source sets s6_url to where the build fetches s6-overlay's tarballs
# from (see the top of this file), serving the local folder when that is
# the source.
s6_source() {
  dir=${S6_OVERLAY_DIR:-../shared/s6-overlay/$s6_version}
  if [ -n "${S6_OVERLAY_BASE_URL:-}" ]; then
    s6_url=$S6_OVERLAY_BASE_URL
    say "s6-overlay $s6_version from $s6_url"
  elif [ -d "$dir" ]; then
    for f in s6-overlay-noarch.tar.xz s6-overlay-noarch.tar.xz.sha256; do
      [ -r "$dir/$f" ] || die "$dir has no $f: it must hold the release tarballs of s6-overlay $s6_version (see ../shared/s6-overlay/README.md)"
    done
    "$GO" build -o "$tmp/servedir" ./tests/e2e/cmd/servedir
    "$tmp/servedir" "$dir" >"$tmp/servedir.url" 2>"$tmp/servedir.log" &
    servedir_pid=$!
    i=0
    until [ -s "$tmp/servedir.url" ]; do
      kill -0 "$servedir_pid" 2>/dev/null || die "servedir exited: $(cat "$tmp/servedir.log")"
      i=$((i + 1))
      [ "$i" -le 100 ] || die "servedir did not start within 10 s"
      sleep 0.1
    done
    s6_url=$(cat "$tmp/servedir.url")
    say "s6-overlay $s6_version from $dir, served at $s6_url"
  else
    s6_url=https://github.com/just-containers/s6-overlay/releases/download/v$s6_version
    say "s6-overlay $s6_version from $s6_url ($dir does not exist)"
  fi
  image=${E2E_IMAGE:-hermes-s6:e2e-s6-overlay-$s6_version}
}

# build TAG DOCKER-BUILD-ARGS…: docker build of the repository with
# s6-overlay from s6_url, quiet unless it fails.
build() {
  tag=$1
  shift
  t0=$(date +%s)
  if ! docker build --network=host --build-arg "S6_OVERLAY_VERSION=$s6_version" \
    --build-arg "S6_OVERLAY_BASE_URL=$s6_url" -t "$tag" "$@" . >"$tmp/build.log" 2>&1; then
    cat "$tmp/build.log" >&2
    grep -q 'curl' "$tmp/build.log" &&
      say "the s6-overlay tarballs could not be fetched from $s6_url: set S6_OVERLAY_BASE_URL to a mirror of the release, or put the release in ../shared/s6-overlay/$s6_version/"
    die "docker build of $tag failed"
  fi
  say "image $tag: built in $(elapsed "$t0")"
}

# reachable URL: one HEAD request answers within 5 s.
reachable() {
  command -v curl >/dev/null 2>&1 || return 1
  curl -fsIL --max-time 5 -o /dev/null "$1" 2>/dev/null
}

need_binaries() {
  for b in bin/hermes-s6 bin/hermes-standin; do
    [ -x "$b" ] || die "$b is missing: run make build"
  done
}

e2e_image() {
  need_binaries
  ensure_base_image
  build "$image" --target e2e --build-arg "BASE_IMAGE=$base"
}

# testdata_image NAME: the image built from tests/e2e/testdata/NAME on top of
# the image under test, tagged $image-NAME.
testdata_image() {
  tag=$image-$1
  t0=$(date +%s)
  if ! docker build --build-arg "IMAGE=$image" -t "$tag" "tests/e2e/testdata/$1" >"$tmp/$1.log" 2>&1; then
    cat "$tmp/$1.log" >&2
    die "docker build of $tag failed"
  fi
  say "image $tag: built in $(elapsed "$t0")"
}

go_test() {
  t0=$(date +%s)
  # A failed test's container dumps (docker logs, ps, s6-svstat, boot log)
  # go here and are printed after the run, not into the test's output.
  diag=${TMPDIR:-/tmp}/hermes-s6-e2e-diagnostics/$run_id
  HERMES_S6_E2E_IMAGE=$image HERMES_S6_E2E_PROVIDER=s6-overlay-$s6_version HERMES_S6_E2E_RUN_ID=$run_id
  HERMES_S6_E2E_DIAG_DIR=$diag
  export HERMES_S6_E2E_IMAGE HERMES_S6_E2E_PROVIDER HERMES_S6_E2E_RUN_ID HERMES_S6_E2E_DIAG_DIR
  set +e
  # shellcheck disable=SC2086 # E2E_GO_TEST_FLAGS is a list of flags
  "$GO" test -tags e2e -count=1 -v -timeout 20m -parallel "${E2E_PARALLEL:-3}" "$@" ${E2E_GO_TEST_FLAGS:-} ./tests/e2e/
  rc=$?
  set -e
  say "go test: exit $rc in $(elapsed "$t0")"
  if [ -d "$diag" ]; then
    say "diagnostics of the failed tests' containers (kept in $diag):"
    for f in "$diag"/*.txt; do
      [ -f "$f" ] && cat "$f"
    done
  fi
  return "$rc"
}

# deploy_test: the deployments' tests (deploy/, a Go module of its own) on
# the image under test: the StatefulSet's pods emulated under Docker, and
# the compose files brought up with docker-compose.
deploy_test() {
  command -v docker-compose >/dev/null 2>&1 || apt_install docker-compose
  t0=$(date +%s)
  set +e
  # shellcheck disable=SC2086 # E2E_DEPLOY_TEST_FLAGS is a list of flags
  (cd deploy && HERMES_S6_E2E_IMAGE=$image HERMES_S6_E2E_RUN_ID=$run_id \
    "$GO" test -count=1 -v -timeout 20m -parallel "${E2E_PARALLEL:-3}" ${E2E_DEPLOY_TEST_FLAGS:-} ./...)
  rc=$?
  set -e
  say "deploy go test: exit $rc in $(elapsed "$t0")"
  return "$rc"
}

start=$(date +%s)
case $mode in
  base-image)
    ensure_engine
    ensure_base_image
    ;;
  e2e-image)
    ensure_engine
    s6_source
    e2e_image
    ;;
  e2e)
    ensure_engine
    s6_source
    e2e_image
    # Both suites run; either failing fails the run.
    failed=0
    go_test -skip '^TestBench' || failed=$?
    deploy_test || failed=$?
    [ "$failed" -eq 0 ] || exit "$failed"
    ;;
  bench)
    ensure_engine
    s6_source
    e2e_image
    testdata_image floor
    testdata_image plain
    HERMES_S6_E2E_BENCH=1 HERMES_S6_E2E_FLOOR_IMAGE=$image-floor HERMES_S6_E2E_PLAIN_IMAGE=$image-plain
    HERMES_S6_E2E_BENCH_RUNS=${E2E_BENCH_RUNS:-11}
    export HERMES_S6_E2E_BENCH HERMES_S6_E2E_FLOOR_IMAGE HERMES_S6_E2E_PLAIN_IMAGE HERMES_S6_E2E_BENCH_RUNS
    # One benchmark at a time: each times containers the other would slow.
    E2E_PARALLEL=1
    go_test -run '^TestBench'
    ;;
  image)
    # The release image; without PyPI, its runtime stage (no gateway),
    # said loudly. The probe is a single HEAD request with a short timeout.
    need_binaries
    ensure_engine
    s6_source
    if [ -n "${E2E_BASE_IMAGE:-}" ]; then
      base=$E2E_BASE_IMAGE
    elif docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
      base=debian:bookworm-slim
    else
      say "debian:bookworm-slim is not present and no registry can be assumed: using the offline base $default_base"
    fi
    ensure_base_image
    target=hermes
    if ! reachable "https://pypi.org/simple/hermes-agent/"; then
      target=runtime
      say "WARNING: PyPI is not reachable: built target runtime, without the gateway program (hermes); install it in a derived image"
    fi
    set -- --target "$target" --build-arg "BASE_IMAGE=$base"
    [ -z "${HERMES_AGENT_VERSION:-}" ] || set -- "$@" --build-arg "HERMES_AGENT_VERSION=$HERMES_AGENT_VERSION"
    tag=${IMAGE_TAG:-hermes-agent:latest}
    build "$tag" "$@"
    docker run --rm "$tag" hermes-s6 version >&2 || die "smoke test failed: docker run --rm $tag hermes-s6 version"
    say "image $tag: target $target, s6-overlay $s6_version, base $base"
    ;;
  *)
    die "unknown mode $mode (base-image, e2e-image, e2e, bench, image)"
    ;;
esac
say "$mode done in $(elapsed "$start")"
