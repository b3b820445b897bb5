#!/bin/sh
# Checks the shared library's ABI surface: soname, that exactly the functions the public
# header declares are exported (nothing else), and that all sit in a release version node.
# usage: abi_check.sh LIBRARY HEADER
set -eu
lib=$1
header=$2
fail=0
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libintdim.so.0" ] || { echo "FAIL soname is '$soname'"; fail=1; }

exports=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
for sym in $exports; do
  case "$sym" in
    intdim_*@@INTDIM_0.[0-9]*) ;;
    *) echo "FAIL exported symbol outside intdim_* or without a version node: $sym"; fail=1 ;;
  esac
done
names=$(echo "$exports" | sed 's/@@.*//' | sort -u)
declared=$(tr '\n' ' ' < "$header" | grep -o 'INTDIM_API[^;(]*(' | grep -o 'intdim_[A-Za-z0-9_]*' | sort -u)
for sym in $declared; do
  echo "$names" | grep -qx "$sym" || { echo "FAIL declared in intdim.h but not exported: $sym"; fail=1; }
done
for sym in $names; do
  echo "$declared" | grep -qx "$sym" || { echo "FAIL exported but not declared in intdim.h: $sym"; fail=1; }
done
if [ $fail -eq 0 ]; then
  echo "abi: soname $soname, $(echo "$names" | wc -l) symbols = the header's declarations"
fi
exit $fail
