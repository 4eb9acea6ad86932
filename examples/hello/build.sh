#!/usr/bin/env bash
# build.sh builds the hello example image: three static Go binaries
# (linux/amd64 GOAMD64=v1, linux/amd64 GOAMD64=v3, linux/arm64) packed by
# examples/hello/mkimage into a multi-platform OCI image layout, tag 1.0.
#
# Usage: examples/hello/build.sh [OUT]     (from any directory)
#   OUT  OCI layout directory; default $OUT, else examples/hello/build/oci.
#
# Needs only Go. Reproducible: the same sources and Go version give the same
# index digest. Timestamps come from SOURCE_DATE_EPOCH (default 1735689600,
# 2025-01-01T00:00:00Z).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

out="${1:-${OUT:-$here/build/oci}}"
# Resolve a relative OUT against the caller's directory before we cd.
[[ "$out" = /* ]] || out="$PWD/$out"
bin="$here/build/bin"
tag="${TAG:-1.0}"
export SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-1735689600}"

cd "$root"
mkdir -p "$bin"

# build GOARCH GOAMD64 OUTPUT: one static, stripped, path-free binary.
build() {
	local arch="$1" amd64="$2" dst="$3"
	CGO_ENABLED=0 GOOS=linux GOARCH="$arch" GOAMD64="$amd64" \
		go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$dst" ./examples/hello
	echo "built $dst (linux/$arch${amd64:+ GOAMD64=$amd64})"
}

build amd64 v1 "$bin/hello-linux-amd64"
build amd64 v3 "$bin/hello-linux-amd64-v3"
build arm64 "" "$bin/hello-linux-arm64"

# Index order: amd64 (v1, no variant) first, then amd64/v3, then arm64/v8.
go run ./examples/hello/mkimage \
	-out "$out" -tag "$tag" \
	-bin "linux/amd64=$bin/hello-linux-amd64" \
	-bin "linux/amd64/v3=$bin/hello-linux-amd64-v3" \
	-bin "linux/arm64/v8=$bin/hello-linux-arm64"
