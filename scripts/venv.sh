#!/usr/bin/env bash
# Creates .venv with the newest Python 3.11+ on this machine and installs the project
# (all services plus dev tools). Idempotent: reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."

pick_python() {
  local candidate
  for version in 3.14 3.13 3.12 3.11; do
    for candidate in "python$version" "$HOME"/.pyenv/versions/"$version"*/bin/python3; do
      if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import venv, ensurepip' 2>/dev/null; then
        command -v "$candidate"
        return
      fi
    done
  done
  echo "no Python 3.11+ with venv found" >&2
  exit 1
}

if [ ! -x .venv/bin/python ]; then
  "$(pick_python)" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  .venv/bin/python -m pip install --quiet --upgrade pip
  # Playwright (the console's browser test) drives Debian's Chromium, never its own download.
  PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 .venv/bin/python -m pip install --quiet -e '.[dev]'
  rm -f .venv/.installed-*
  touch "$stamp"
fi
