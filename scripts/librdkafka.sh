#!/usr/bin/env bash
# librdkafka for the service's bun:ffi binding (src/kafka/rdkafka.ts), producer and consumer alike: the shared library
# Confluent builds into its confluent-kafka wheel on PyPI (self-contained: only libc, libm, libdl, libpthread, librt),
# pinned and checksummed, so no root, no compiler and no distribution package are needed. Debian's librdkafka1 is
# 2.0.2 (January 2023); below 2.6.1 its SCRAM fails against Kafka 4 brokers (confluentinc/librdkafka#4895).
#
#   scripts/librdkafka.sh <dir>    puts <dir>/librdkafka.so.1 (and <dir>/VERSION) there, once
set -euo pipefail
VERSION=2.16.0 # inside confluent-kafka 2.16.1
case "$(uname -s)-$(uname -m)" in
  Linux-x86_64)
    url=https://files.pythonhosted.org/packages/f3/4f/9e5e725bd7bf29f031de080c92677db02322f822870160cc500bce5f1801/confluent_kafka-2.16.1-cp312-cp312-manylinux_2_28_x86_64.whl
    sha=fdb2c4d53e84e10f4e567f4e74bba45d0ce90276b81259c3fc58df6960caabf5 ;;
  Linux-aarch64)
    url=https://files.pythonhosted.org/packages/9a/02/e8379994c83fcd568f3b9815c663120aff8b2f095e2d0317d75d3a372118/confluent_kafka-2.16.1-cp312-cp312-manylinux_2_28_aarch64.whl
    sha=9deb0aa8920d567d09dd6258db6428f16ab9d229ee93aaf35a014aec771c2500 ;;
  *)
    echo "no pinned librdkafka for $(uname -s) $(uname -m): set LIBRDKAFKA_PATH to a librdkafka 2.x (2.12 or later)" >&2
    exit 1 ;;
esac
dest=${1:?usage: $0 <dir>}
[ -s "$dest/librdkafka.so.1" ] && [ "$(cat "$dest/VERSION" 2>/dev/null)" = "$VERSION" ] && exit 0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
curl -fsSL --retry 3 -o "$tmp/wheel.zip" "$url"
echo "$sha  $tmp/wheel.zip" | sha256sum -c --quiet - || { echo "librdkafka: the wheel's checksum does not match" >&2; exit 1; }
mkdir -p "$tmp/x"
if command -v unzip >/dev/null; then
  unzip -q -j "$tmp/wheel.zip" 'confluent_kafka.libs/librdkafka-*.so.1' -d "$tmp/x"
elif command -v python3 >/dev/null; then
  python3 - "$tmp/wheel.zip" "$tmp/x" <<'PY'
import sys, zipfile, os
z = zipfile.ZipFile(sys.argv[1])
for n in z.namelist():
    if n.startswith("confluent_kafka.libs/librdkafka-") and n.endswith(".so.1"):
        open(os.path.join(sys.argv[2], os.path.basename(n)), "wb").write(z.read(n))
PY
else
  echo "librdkafka: need unzip or python3 to open the wheel (Debian: sudo apt-get install -y unzip)" >&2
  exit 1
fi
lib=$(ls "$tmp"/x/librdkafka-*.so.1 2>/dev/null | head -1)
[ -n "$lib" ] || { echo "librdkafka: no librdkafka-*.so.1 in the wheel" >&2; exit 1; }
mkdir -p "$dest"
mv "$lib" "$dest/librdkafka.so.1"
echo "$VERSION" >"$dest/VERSION"
