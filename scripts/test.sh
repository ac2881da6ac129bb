#!/usr/bin/env bash
# Install everything the test suite needs on a fresh Debian machine, then run it all:
# lint, format check, strict typing and pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests start or drive (network namespaces, nftables, Chromium).
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  mapfile -t wanted < <(grep -vE '^\s*(#|$)' .ci/apt-packages.txt)
  missing=()
  for pkg in "${wanted[@]}"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  if ((${#missing[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  fi
fi

python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/pytest "$@"
