#!/usr/bin/env bash
# Run every test. Installs what the tests need when it is missing: Debian's docker-registry (a
# registry without the referrers API, for the tag-fallback tests), as root through apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v docker-registry >/dev/null 2>&1 && [ ! -x /usr/bin/docker-registry ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing docker-registry (Debian package) for the tag-fallback tests" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-registry >/dev/null
	else
		echo "docker-registry is missing: install it (apt-get install docker-registry) or the tag-fallback tests are skipped" >&2
	fi
fi

go vet ./...
# The binaries build without cgo for every Linux architecture compatkit reads (NFD's cpu source
# needs cgo outside amd64; compatkit's /proc/cpuinfo source stands in for it there).
for arch in amd64 arm64 s390x ppc64le riscv64; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -o /dev/null ./cmd/... ||
		{ echo "cross-compiling for linux/$arch without cgo failed" >&2; exit 1; }
done
go test -count=1 "$@" ./...
