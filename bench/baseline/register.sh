#!/bin/sh
# register.sh PROFILE — the POSIX sh baseline of `hermes-s6 register
# --profile PROFILE`: validate the name, check the profile exists, build the
# slot (down) in a dot-named staging dir, rename it into place, rescan, and
# wait until s6-supervise listens on it. See lib.sh.
set -eu
# shellcheck source-path=SCRIPTDIR source=lib.sh
. "${0%/*}/lib.sh"

[ "$#" -eq 1 ] || die 2 "usage: register.sh PROFILE"
p=$1
valid_name "$p" || die 2 "invalid profile name '$p': 1-64 of a-z, 0-9, _ and -, starting with a letter or digit"
if [ "$p" != default ] && [ ! -f "$home/profiles/$p/SOUL.md" ]; then
  die 2 "profile $p does not exist ($home/profiles/$p/SOUL.md)"
fi
slot="$scandir/gateway-$p"
[ ! -e "$slot" ] || die 1 "slot $slot exists"

stage_dir "gateway-$p"
trap 'rm -rf "$stage"' EXIT
gateway_slot "$stage" "$p" 1
install "gateway-$p"
trap - EXIT
pickup "$slot"
