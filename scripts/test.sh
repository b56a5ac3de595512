#!/usr/bin/env bash
# Set up everything the test suite needs on a fresh machine, then run it:
# system packages (redis-server, chromium) if missing, a virtualenv with the project and its
# dev extras, then ruff, mypy --strict and pytest. Safe to run again; re-uses .venv.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
    if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing ${need_apt[*]} (apt)"
        apt-get update -qq >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
    else
        echo "==> missing ${need_apt[*]}: tests that need them will be skipped" >&2
    fi
fi

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PY" -m venv .venv
fi
echo "==> installing perfect21[dev] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"

echo "==> ruff"
.venv/bin/ruff check .
echo "==> mypy --strict"
.venv/bin/mypy
echo "==> pytest"
exec .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
