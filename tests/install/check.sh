#!/usr/bin/env bash
# Install ordo into a scratch prefix and build a consumer against it twice:
# with pkg-config and with CMake's find_package(ordo). Run by `make install-check`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$root/build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -n1)
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"
# pkg-config records the configured prefix; point it at the scratch one.
cc -o "$prefix/consumer_pc" "$here/consumer.c" \
  $(pkg-config --define-variable=prefix="$prefix" --cflags --libs ordo)
"$prefix/consumer_pc"
cmake -S "$here" -B "$prefix/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/cmake-build" >/dev/null
"$prefix/cmake-build/consumer_cmake"
echo "install-check: pkg-config and find_package consumers both work"
