#!/bin/sh
# Installs the Debian packages `make -C escrow-program` needs (Debian 12:
# rustc 1.63 with its rust-src for building `core`, llvm-14 for llc-14), and
# systemd for `systemd-analyze`, which the tests run on systemd/perpd.service;
# skips those already installed. Safe to run any number of times.
set -eu
# PERPD_EXTRA_PACKAGES: more packages to install the same way (the top-level ci-deps.sh)
PACKAGES="make rustc rust-src llvm-14 systemd ${PERPD_EXTRA_PACKAGES:-}"
missing=""
for package in $PACKAGES; do
    if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $package"
    fi
done
if [ -z "$missing" ]; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "ci-deps: installing$missing"
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086 # word splitting of the package list is intended
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
