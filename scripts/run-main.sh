#!/usr/bin/env bash
# The main job: install dependencies, build, and run d90 searches on the built-in examples,
# printing each table and d90.  Usage (fresh Debian 12, as root):  bash scripts/run-main.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ -d build ]; then meson setup --reconfigure build >/dev/null; else meson setup build >/dev/null; fi
ninja -C build
mkdir -p out
echo "== d90 on Li et al.'s toy problem (D = 1000, d_int = 10)"
rm -f out/toy.journal
build/tools/intdim run-toy --journal out/toy.journal
build/tools/intdim report out/toy.journal --plot out/toy.png

echo
echo "== d90 on Fashion-MNIST, 784-200-200-10 MLP (D = 199,210), quick protocol"
build/examples/fashion_mnist/fmnist --quick
