#!/usr/bin/env bash
# Installs every Debian 12 package lungvol needs to build, test and run. Idempotent; run as
# root (or with sudo available). Nothing else is downloaded.
set -euo pipefail
PACKAGES=(
  build-essential cmake ninja-build ccache pkg-config git
  libinsighttoolkit5-dev libdcmtk-dev libgdcm-dev
  libcli11-dev libtomlplusplus-dev nlohmann-json3-dev libspdlog-dev libfmt-dev
  libsqlite3-dev sqlite3 libboost-math-dev zlib1g-dev libssl-dev
  r-mathlib
  libgtest-dev libgmock-dev libbenchmark-dev
  dcm2niix dicom3tools python3
  libxlsxwriter-dev python3-openpyxl libpng-dev time
  chromium
  libvtk9-dev xvfb xauth
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#PACKAGES[@]} packages already installed"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "setup: done"
