#!/usr/bin/env bash
# `make bench` / `make soak`: builds the real k6 (go install, pinned) when missing, brings the stack up,
# and runs bench/run.ts. Results: bench/results/<timestamp>.json and .md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K6_VERSION=v1.4.2
K6="$ROOT/.cache/k6/bin/k6"

if [ ! -x "$K6" ] || ! "$K6" version 2>/dev/null | grep -q "${K6_VERSION#v}"; then
  if ! command -v go >/dev/null; then
    [ "$(id -u)" = 0 ] || { echo "go is needed to build k6: install golang (Debian: apt-get install golang)"; exit 1; }
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq golang >/dev/null
  fi
  echo "[bench] building k6 $K6_VERSION with go install (a few minutes, once)"
  mkdir -p "$ROOT/.cache/k6/bin"
  GOBIN="$ROOT/.cache/k6/bin" go install "go.k6.io/k6@$K6_VERSION"
fi

bash "$ROOT/scripts/stack.sh" up
eval "$(bash "$ROOT/scripts/stack.sh" env)"
export K6
cd "$ROOT" && exec bun bench/run.ts "$@"
