#!/usr/bin/env bash
# `make data`: Fashion-MNIST's four IDX files for `--dataset fashion-mnist`, from Debian's
# dataset-fashion-mnist package (it installs them in /usr/share/datasets/fashion-mnist,
# where Artemis looks when --data-root / $ARTEMIS_DATA do not hold them). Installs the
# package when run as root on a Debian-based system; otherwise prints what to do and
# exits 1. Nothing is downloaded from anywhere but the system's package sources.
set -uo pipefail
DIR=/usr/share/datasets/fashion-mnist
FILES="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"
have_files() { for f in $FILES; do [ -f "$DIR/$f.gz" ] || [ -f "$DIR/$f" ] || return 1; done; }

if have_files; then
    echo "Fashion-MNIST is installed in $DIR"
    exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" -eq 0 ]; then
    echo "installing Debian's dataset-fashion-mnist (apt-get update && apt-get install)"
    if apt-get update -q && apt-get install -y -q dataset-fashion-mnist && have_files; then
        echo "Fashion-MNIST is installed in $DIR"
        exit 0
    fi
    echo "apt-get could not install dataset-fashion-mnist (see above)" >&2
elif command -v apt-get >/dev/null; then
    echo "not root: run  sudo apt-get install dataset-fashion-mnist  (Debian/Ubuntu)" >&2
fi
cat >&2 <<MSG
Fashion-MNIST is not installed. Either install Debian's package dataset-fashion-mnist
(files in $DIR), or put the four files
  $FILES
(.gz or not, from https://github.com/zalandoresearch/fashion-mnist) in DIR/fashion-mnist
and pass --data-root DIR (or set ARTEMIS_DATA=DIR).
MSG
exit 1
