#!/bin/sh
# TEST ONLY: installs the hermes-s6 test provider (see README.md beside this
# file) into an image that already has Debian's s6 and execline. Run once,
# as root, by the Dockerfile when S6_PROVIDER=debian-test.
set -eu

src=$(dirname "$0")
libexec=/usr/lib/hermes-s6-test-provider

install -d -m 0755 "$libexec" /command
install -m 0755 "$src/init" /init
install -m 0755 "$src/rc.init" "$src/finish" "$libexec/"
install -m 0644 "$src/README.md" "$libexec/"

# s6-overlay keeps its s6 and execline tools in /command; scripts and tests
# call them there.
for tool in /usr/bin/s6-* /usr/bin/execlineb /usr/lib/execline/bin/*; do
  ln -sf "$tool" "/command/${tool##*/}"
done
install -m 0755 "$src/with-contenv" /command/with-contenv
