#!/usr/bin/env bash
# Fuzzes the running API from its own OpenAPI document with schemathesis (PyPI): every check, including
# not_a_server_error and response schema conformance. Brings the stack up first (scripts/stack.sh up).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.cache/venv"
ST_VERSION=4.32.5
if [ ! -x "$VENV/bin/schemathesis" ] || ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$ST_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q "schemathesis==$ST_VERSION"
fi
bash "$ROOT/scripts/stack.sh" up >/dev/null
BASE="${API_URL:-http://127.0.0.1:${PORT:-8080}}"
exec "$VENV/bin/schemathesis" run "$BASE/swagger/json" --url "$BASE" --checks all \
  --max-examples "${FUZZ_EXAMPLES:-100}" --workers 2 --suppress-health-check all "$@"
