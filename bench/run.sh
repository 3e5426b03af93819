#!/usr/bin/env bash
# `make bench` / `make soak`: builds the real k6 (go install, pinned) when missing, brings the stack up,
# and runs bench/run.ts. Results: bench/results/<timestamp>.json and .md.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
K6_VERSION=v1.4.2
K6="$ROOT/.cache/k6/bin/k6"

# k6 v1.4 needs Go >= 1.24; Debian 12's golang is 1.19. When the local go is missing or older, a Go toolchain
# comes from the Go module proxy (the golang.org/toolchain module, the same zip `GOTOOLCHAIN` downloads) into .cache/go.
GO_TOOLCHAIN=go1.24.11
go_ok() { command -v go >/dev/null && [ "$(printf '%s\n' "go1.24" "$(go env GOVERSION 2>/dev/null)" | sort -V | head -n1)" = "go1.24" ]; }
ensure_go() {
  go_ok && return
  local dir="$ROOT/.cache/go/$GO_TOOLCHAIN"
  if [ ! -x "$dir/bin/go" ]; then
    local arch; arch=$(uname -m); [ "$arch" = x86_64 ] && arch=amd64; [ "$arch" = aarch64 ] && arch=arm64
    local mod="golang.org/toolchain@v0.0.1-$GO_TOOLCHAIN.linux-$arch"
    echo "[bench] fetching $GO_TOOLCHAIN from the Go module proxy (~70 MB, once; the local go is missing or older than 1.24)"
    mkdir -p "$ROOT/.cache/go"
    curl -fsSL "https://proxy.golang.org/golang.org/toolchain/@v/v0.0.1-$GO_TOOLCHAIN.linux-$arch.zip" -o "$ROOT/.cache/go/toolchain.zip"
    rm -rf "$dir" "$ROOT/.cache/go/unpack"
    python3 -c "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])" "$ROOT/.cache/go/toolchain.zip" "$ROOT/.cache/go/unpack"
    mv "$ROOT/.cache/go/unpack/$mod" "$dir"
    chmod +x "$dir"/bin/* "$dir"/pkg/tool/*/* 2>/dev/null || true
    rm -rf "$ROOT/.cache/go/unpack" "$ROOT/.cache/go/toolchain.zip"
  fi
  export GOROOT="$dir" PATH="$dir/bin:$PATH" GOTOOLCHAIN=local
  go_ok || { echo "[bench] $GO_TOOLCHAIN did not install in $dir"; exit 1; }
}

if [ ! -x "$K6" ] || ! "$K6" version 2>/dev/null | grep -q "${K6_VERSION#v}"; then
  ensure_go
  echo "[bench] building k6 $K6_VERSION with $(go env GOVERSION) (go install; a few minutes, once)"
  mkdir -p "$ROOT/.cache/k6/bin"
  GOBIN="$ROOT/.cache/k6/bin" GOPATH="$ROOT/.cache/gopath" go install "go.k6.io/k6@$K6_VERSION"
fi

# The public path's step sends each view through a proxy on this machine (bench/load.ts PUBLIC=1).
export TRUSTED_PROXIES="${TRUSTED_PROXIES:-127.0.0.1}"
bash "$ROOT/scripts/stack.sh" up
# A whole run starts from a fresh API and worker: memory an earlier run left (200 000 Idempotency-Keys of its keys
# scenario) made the next run's RSS at the best ingest rate 205-264 MB instead of ~130.
if [ "${1:-all}" = all ]; then bash "$ROOT/scripts/stack.sh" restart-app; fi
eval "$(bash "$ROOT/scripts/stack.sh" env)"
export K6
cd "$ROOT" && exec bun bench/run.ts "$@"
