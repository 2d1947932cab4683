#!/usr/bin/env bash
# Create .venv and install Conveyor into it (editable). With --dev, also the test tools, the
# example plug-in the tests load through its entry point, and Debian's chromium for the
# headless-browser test of the API docs (Playwright drives it; its own browser download is
# not used), Debian's prometheus for promtool, which checks and unit-tests the shipped alert
# rules (deploy/prometheus), and iproute2 for the tests that build hosts from network
# namespaces (tests/hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c 'import venv, ensurepip' >/dev/null 2>&1; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv
fi
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
if [ "${1:-}" = "--dev" ]; then
    if ! command -v ip >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2
    fi
    if ! command -v chromium >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium
    fi
    if ! command -v promtool >/dev/null; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq prometheus
    fi
    .venv/bin/pip install -q -e '.[dev]'
    .venv/bin/pip install -q --no-deps --no-build-isolation ./examples/plugin
else
    .venv/bin/pip install -q -e .
fi
# Bytecode for the editable sources, as a wheel install has: under PYTHONDONTWRITEBYTECODE
# every process would otherwise compile each module it imports from source, each start.
.venv/bin/python -m compileall -q src/conveyor >/dev/null
