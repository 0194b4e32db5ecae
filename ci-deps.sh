#!/bin/sh
# Installs every Debian package the tests need on a fresh machine: the escrow build's
# toolchain and systemd (escrow-program/ci-deps.sh says which), and chromium, the
# browser the web view's tests drive (tests/test_web_*.py; Playwright's own browser
# download is never used). Skips what is installed. Safe to run any number of times.
set -eu
cd "$(dirname "$0")"
PERPD_EXTRA_PACKAGES="chromium" escrow-program/ci-deps.sh
