#!/usr/bin/env bash
# Installs the system packages the tests need, once, from Debian.
# Tests never skip for a missing dependency: this script makes sure there is none.
set -euo pipefail
need=()
for pkg in "$@"; do
  command -v "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "==> installing ${need[*]} (Debian packages)"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
