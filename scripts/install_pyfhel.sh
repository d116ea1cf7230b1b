#!/usr/bin/env bash
# Install Pyfhel into the given Python environment, offline-safe.
# Pyfhel 3.5.0 ships no wheel and its default build downloads GSL/zlib/zstd,
# which fails without internet. We first try a cached wheel, then the plain
# install, then build the sdist with those SEAL options switched off and cache
# the wheel (in ~/.cache/artemis/wheels) for the next run.
set -euo pipefail
PY=${1:?usage: install_pyfhel.sh PYTHON}
VERSION=3.5.0
CACHE=${PYFHEL_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/artemis/wheels}
mkdir -p "$CACHE"

if "$PY" -c "import Pyfhel" 2>/dev/null; then exit 0; fi
cached_wheel() { ls "$CACHE"/[Pp]yfhel-$VERSION-*.whl 2>/dev/null | head -n 1; }
if [ -n "$(cached_wheel)" ]; then
  "$PY" -m pip install -q "$(cached_wheel)" && exit 0
fi
if "$PY" -m pip install -q "Pyfhel==$VERSION" 2>/dev/null; then
  exit 0
fi

echo "Building Pyfhel $VERSION from source with SEAL's downloads switched off (about 2-4 minutes)..." >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$PY" -m pip download -q --no-deps --no-binary Pyfhel -d "$work" "Pyfhel==$VERSION"
tar -xzf "$work"/[Pp]yfhel-$VERSION.tar.gz -C "$work"
src=$(echo "$work"/[Pp]yfhel-$VERSION)
sed -i -E "s/^(\s*'?(SEAL_USE_MSGSL|SEAL_USE_ZLIB|SEAL_USE_ZSTD|SEAL_BUILD_DEPS)'?\s*[=:]\s*)'ON'/\1'OFF'/" "$src/pyproject.toml"
grep -nE "SEAL_USE_MSGSL|SEAL_USE_ZLIB|SEAL_USE_ZSTD|SEAL_BUILD_DEPS" "$src/pyproject.toml" >&2 || true
"$PY" -m pip wheel -q --no-deps -w "$CACHE" "$src"
"$PY" -m pip install -q "$(cached_wheel)"
