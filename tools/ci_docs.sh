#!/usr/bin/env bash
# Build the offline docs site and check it in headless Chromium (called from .ci/run).
#   1. installs Debian's chromium when it is missing (apt-get, quietly)
#   2. builds _docs/ with tools/build_docs.py (KaTeX comes from npm into .cache/katex on first use)
#   3. runs tests/test_docs_browser.py with pytest
set -euo pipefail
cd "$(dirname "$0")/.."

PY=.venv/bin/python
if [ ! -x "$PY" ]; then
  echo "ci_docs: no .venv yet, running make install"
  make install
fi

if ! command -v chromium >/dev/null 2>&1 && [ ! -x /usr/bin/chromium ]; then
  echo "ci_docs: installing chromium (apt-get)"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq >/dev/null
  $SUDO apt-get install -y -qq chromium >/dev/null
fi

"$PY" tools/build_docs.py "$@"
"$PY" -m pytest -q -rs -p no:cacheprovider tests/test_docs_browser.py
