#!/bin/sh
# ctest's "python" test: pytest on the binding against the libordo.so just
# built. tests/CMakeLists.txt sets ORDO_LIBRARY, and ORDO_TEST_PRELOAD (the
# sanitizer runtime that a sanitized libordo.so needs loaded first), which is
# given to python alone as LD_PRELOAD.
# Exit 77 (ctest: skipped) only when python3 or pytest is missing.
here=$(cd "$(dirname "$0")" && pwd)
py=${ORDO_TEST_PYTHON:-/usr/bin/python3}
[ -x "$py" ] || py=$(command -v python3) || {
  echo "SKIP: no python3 (make deps installs it)"; exit 77; }
if ! "$py" -c "import pytest" 2>/dev/null; then
  echo "SKIP: python3-pytest is not installed for $py (make deps installs it)"
  exit 77
fi
cd "$here/.." || exit 1
LD_PRELOAD=${ORDO_TEST_PRELOAD:-$LD_PRELOAD} exec "$py" -m pytest -q \
  -p no:cacheprovider tests "$@"
