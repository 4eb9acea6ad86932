#!/usr/bin/env bash
# Run every test. Installs what the tests need when it is missing: Debian's docker-registry (a
# registry without the referrers API, for the tag-fallback tests) and etcd-server, as root through
# apt-get, and kube-apiserver and kube-scheduler built once from the Go module proxy
# (scripts/kube-tools.sh, cached in ~/.cache/compatkit-peers; about 8 minutes the first time) for
# the admission webhook's tests on a real control plane.
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

if kube_env=$(./scripts/kube-tools.sh); then
	eval "$kube_env"
	# The control plane is there: its tests must run, not skip.
	export COMPATKIT_REQUIRE_KUBE=1
else
	echo "kube-apiserver, kube-scheduler or etcd is missing: the Kubernetes tests are skipped" >&2
fi

go vet ./...
# The binaries build without cgo for every Linux architecture compatkit reads (NFD's cpu source
# needs cgo outside amd64; compatkit's /proc/cpuinfo source stands in for it there).
for arch in amd64 arm64 s390x ppc64le riscv64; do
	CGO_ENABLED=0 GOOS=linux GOARCH=$arch go build -o /dev/null ./cmd/... ||
		{ echo "cross-compiling for linux/$arch without cgo failed" >&2; exit 1; }
done
go test -count=1 "$@" ./...
