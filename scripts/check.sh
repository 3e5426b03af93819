#!/usr/bin/env bash
# `make check`: the typecheck (tsc --noEmit, TypeScript from the lockfile) and Biome (lint and format check) over
# src, test, bench, scripts and client. Needs Bun and the npm dependencies only, which it installs when missing.
set -uo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
bash scripts/stack.sh deps || exit 1
export PATH="$ROOT/.cache/bun/node_modules/.bin:$PATH"
rc=0
echo "[check] tsc --noEmit"
./node_modules/.bin/tsc --noEmit -p . || rc=1
echo "[check] biome check (lint + format; fix with: ./node_modules/.bin/biome check --write .)"
./node_modules/.bin/biome check . || rc=1
[ $rc -eq 0 ] && echo "[check] ok" || echo "[check] FAILED"
exit $rc
