#!/usr/bin/env bash
# bench/run.sh: compat-attach against NFD and oras at a registry's real distance, in one command.
#
# Builds compat-attach, the peers (oras, nfd, cached like the interoperability scripts) and the
# example image with a fourth platform (linux/amd64/v2), starts Debian's docker-registry on
# 127.0.0.1 behind a proxy adding BENCH_DELAY (30ms) to every request, and prints the median time,
# registry requests and peak memory of check, select and attach beside the peer's, with the ratio
# and issue 10's target; then the report benchmark (10,000 images x 5,000 nodes on 2 cores).
#
# Usage: bench/run.sh        (BENCH_RUNS=5 runs per command, BENCH_IMAGES=100, BENCH_DELAY=30ms,
#                             BENCH_REPORT=0 to skip the report benchmark)
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
oras=$(oras_bin)
nfd=$(nfd_bin)
start_registry

echo "building compat-attach and the 4-platform example image" >&2
go build -o "$work/compat-attach" ./cmd/compat-attach
bin="$work/bin"
mkdir -p "$bin"
export SOURCE_DATE_EPOCH=1735689600
for v in v1 v2 v3; do
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=$v go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$bin/amd64-$v" ./examples/hello
done
CGO_ENABLED=0 GOOS=linux GOARCH=arm64 go build -trimpath -buildvcs=false -ldflags='-s -w' -o "$bin/arm64" ./examples/hello
go run ./examples/hello/mkimage -out "$work/oci" -tag 1.0 \
	-bin "linux/amd64=$bin/amd64-v1" -bin "linux/amd64/v2=$bin/amd64-v2" \
	-bin "linux/amd64/v3=$bin/amd64-v3" -bin "linux/arm64/v8=$bin/arm64" >/dev/null
mkdir -p "$work/spec"
# One CUE package of two files (hidden fields such as _kernel are package-scoped).
for f in examples/hello/compat.cue bench/v2.cue; do
	{ echo "package hello"; echo; cat "$f"; } >"$work/spec/$(basename "$f")"
done

go run ./bench -registry "$reg" -compat-attach "$work/compat-attach" -nfd "$nfd" -oras "$oras" \
	-layout "$work/oci" -spec-dir "$work/spec" -work "$work" \
	-runs "${BENCH_RUNS:-5}" -images "${BENCH_IMAGES:-100}" -delay "${BENCH_DELAY:-30ms}"

[ "${BENCH_REPORT:-1}" = 0 ] && exit 0
echo
echo "report of 10,000 images x 5,000 nodes (300 distinct specs, 200 distinct feature sets) from cached specs, 2 cores:"
go test ./pkg/report -run '^$' -bench 'Report10000x5000' -cpu 2 -benchmem -benchtime 3x | grep Benchmark
