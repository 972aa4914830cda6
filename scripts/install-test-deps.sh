#!/usr/bin/env bash
# Installs what the tests need besides npm packages, from Debian's packages (run as root):
#   qemu-utils  qemu-img, to make and check qcow2 images
# Idempotent: packages already present are not fetched again.
set -euo pipefail
packages=(qemu-utils)
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then echo "install-test-deps: run as root to install: ${missing[*]}" >&2; exit 1; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
echo "test dependencies present: ${packages[*]}"
