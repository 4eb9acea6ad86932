#!/usr/bin/env bash
# The main job on the shipped example, with no registry: build the example image into an OCI
# layout, validate its compat.cue, attach the specs as referrers, list them, and check this host.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }

mkdir -p bin
go build -o bin/compat-attach ./cmd/compat-attach
export PATH="$PWD/bin:$PATH"

layout=examples/hello/build/oci
rm -rf "$layout"
step examples/hello/build.sh
examples/hello/build.sh "$layout"

step compat-attach vet examples/hello/compat.cue
compat-attach vet examples/hello/compat.cue

step compat-attach export examples/hello/compat.cue --platform linux/amd64/v3
compat-attach export examples/hello/compat.cue --platform linux/amd64/v3

# A cosign-compatible key pair for the demo (the password is only for the demo).
export COSIGN_PASSWORD=compatkit-demo
keys=examples/hello/build/demo
rm -f "$keys.key" "$keys.pub"
step compat-attach generate-key-pair --output-key-prefix "$keys"
compat-attach generate-key-pair --output-key-prefix "$keys"

step compat-attach attach --oci-layout "$layout:1.0" --spec examples/hello/compat.cue --sign --key "$keys.key"
compat-attach attach --oci-layout "$layout:1.0" --spec examples/hello/compat.cue --sign --key "$keys.key"

step compat-attach verify --oci-layout "$layout:1.0" --key "$keys.pub"
compat-attach verify --oci-layout "$layout:1.0" --key "$keys.pub"

step compat-attach discover --oci-layout "$layout:1.0"
compat-attach discover --oci-layout "$layout:1.0"

# check and select exit 3 when the host cannot run the image (or no manifest fits): the demo
# reports it and goes on.
verdict() {
	local sub=$1
	shift
	step compat-attach "$sub" --oci-layout "$layout:1.0" "$@"
	local rc=0
	compat-attach "$sub" --oci-layout "$layout:1.0" "$@" || rc=$?
	case $rc in
	0 | 3) echo "(exit code $rc)" ;;
	*) exit "$rc" ;;
	esac
}
arch=$(go env GOARCH)
verdict select
if [ "$arch" = amd64 ]; then
	verdict select --features examples/profiles/x86-64-v2-no-avx2.json
	verdict check --platform linux/amd64/v3 --key "$keys.pub"
	verdict check --platform linux/amd64/v3 --features examples/profiles/x86-64-v2-no-avx2.json
	verdict check --features examples/profiles/x86-64-v2-no-avx2.json
	verdict check --platform linux/amd64/v1
else
	verdict check --platform "linux/$arch" --key "$keys.pub"
fi
