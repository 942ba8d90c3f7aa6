#!/usr/bin/env bash
# Installs Debian packages the tests and `make run` need (.ci/run, make
# tools) without starting the services they ship: Debian's prometheus
# package would otherwise start a system Prometheus on port 9090 of every
# interface, while the control plane runs its own on loopback.
#
# Usage: hack/install-debian-packages.sh PACKAGE...
#
# A package's postinst starts its service through invoke-rc.d or
# deb-systemd-invoke, which both ask /usr/sbin/policy-rc.d first; exit code
# 101 means "not allowed". If that file is absent it is created for the
# install and removed afterwards; one that exists is someone else's and is
# left as it is.
set -euo pipefail

if (($# == 0)); then
  echo "usage: $0 PACKAGE..." >&2
  exit 2
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

policy=/usr/sbin/policy-rc.d
created=""
remove_policy() {
  if [ -n "$created" ]; then
    $SUDO rm -f "$policy"
  fi
}
trap remove_policy EXIT
trap 'exit 130' INT TERM

if [ ! -e "$policy" ] && [ ! -L "$policy" ]; then
  # noclobber: should another install create it meanwhile, theirs stays.
  if $SUDO sh -c 'set -C; printf "#!/bin/sh\nexit 101\n" > "$1"' sh "$policy" 2>/dev/null; then
    created=1
    $SUDO chmod 755 "$policy"
  elif [ ! -e "$policy" ]; then
    echo "cannot create $policy: refusing to install packages whose services would start" >&2
    exit 1
  fi
fi

echo "installing $* from Debian (services not started)"
$SUDO apt-get update -qq
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
