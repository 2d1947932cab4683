#!/usr/bin/env bash
# Set up, check and test everything: venv + packages, services, ruff, mypy, pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev
bash scripts/services.sh
.venv/bin/ruff check src tests examples
.venv/bin/mypy
set +e
.venv/bin/pytest -q -p no:cacheprovider --durations=30 "$@" tests examples/plugin
code=$?
set -e
[ "$code" -eq 5 ] && { echo "no tests were collected" >&2; exit 1; }
exit "$code"
