#!/usr/bin/env bash
# Install the Debian packages libintdim needs to build, test and run its examples.
# Idempotent: does nothing (and needs no network) when everything is already installed.
# Arguments: more packages to install the same way.
set -euo pipefail
packages=(
  build-essential meson ninja-build pkg-config
  libopenblas-dev libblis-dev check zlib1g-dev
  python3-numpy python3-torch python3-pytest
  gnuplot-nox openmpi-bin libopenmpi-dev
  dataset-fashion-mnist fortunes fortunes-min
)
packages+=("$@") # extra packages a caller needs (the tests: a second compiler)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
