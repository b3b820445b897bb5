#!/bin/sh
# Checks the shared library's ABI surface: the soname; that exactly the functions the public
# header declares are exported (nothing else); that the version script names each of them
# (no wildcard) in a release node; and that each exported symbol carries the node the
# script puts it in.
# usage: abi_check.sh LIBRARY HEADER VERSION_SCRIPT   (needs readelf, nm and perl: perl-base is
# essential on Debian)
set -eu
lib=$1
header=$2
map=$3
fail=0
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = "libintdim.so.0" ] || { echo "FAIL soname is '$soname'"; fail=1; }

# "symbol node" for every name the version script lists under a node's global: part. Comments
# may span lines; nodes may sit on one line or many (`INTDIM_0.2 { global: a; b; } INTDIM_0.1;`).
listed=$(perl -0777 -ne '
  s{/\*.*?\*/}{ }gs;
  while (/([A-Za-z0-9_.]+)\s*\{(.*?)\}\s*[A-Za-z0-9_.]*\s*;/gs) {
    my ($node, $body) = ($1, $2);
    next unless $body =~ /global\s*:(.*?)(?:local\s*:|\z)/s;
    print "$_ $node\n" for grep { length } split /[\s;]+/, $1;
  }' "$map")
if echo "$listed" | grep -q '[*?[]'; then
  echo "FAIL the version script has a wildcard in a global: list"; fail=1
fi

exports=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}')
for sym in $exports; do
  name=${sym%%@*}
  node=${sym##*@}
  case "$sym" in
    intdim_*@@INTDIM_[0-9]*) ;;
    *) echo "FAIL exported symbol outside intdim_* or without a version node: $sym"; fail=1; continue ;;
  esac
  case "$name" in
    intdim__*) echo "FAIL internal symbol exported: $sym"; fail=1; continue ;;
  esac
  want=$(echo "$listed" | awk -v s="$name" '$1 == s {print $2}')
  [ "$want" = "$node" ] || { echo "FAIL $name is in node '$node', the version script says '$want'"; fail=1; }
done
names=$(echo "$exports" | sed 's/@@.*//' | sort -u)
declared=$(tr '\n' ' ' < "$header" | grep -o 'INTDIM_API[^;(]*(' | grep -o 'intdim_[A-Za-z0-9_]*' | sort -u)
for sym in $declared; do
  echo "$names" | grep -qx "$sym" || { echo "FAIL declared in intdim.h but not exported: $sym"; fail=1; }
  echo "$listed" | awk '{print $1}' | grep -qx "$sym" || { echo "FAIL declared in intdim.h but not named in the version script: $sym"; fail=1; }
done
for sym in $names; do
  echo "$declared" | grep -qx "$sym" || { echo "FAIL exported but not declared in intdim.h: $sym"; fail=1; }
done
for sym in $(echo "$listed" | awk '{print $1}'); do
  echo "$declared" | grep -qx "$sym" || { echo "FAIL named in the version script but not declared in intdim.h: $sym"; fail=1; }
done
if [ $fail -eq 0 ]; then
  echo "abi: soname $soname, $(echo "$names" | wc -l) symbols = the header's declarations = the version script's names"
fi
exit $fail
