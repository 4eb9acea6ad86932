#!/usr/bin/env bash
# Interoperability of signatures: what `compat-attach attach --sign --key` pushes (an in-toto
# statement in a DSSE envelope in a sigstore bundle v0.3, a referrer of the image in cosign's
# layout) must be accepted by `cosign verify-attestation --key`, with cosign v3 built from the Go
# module proxy (cached under ${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}), against Debian's
# docker-registry on 127.0.0.1 (no referrers API: the referrers tag schema). Needs docker-registry
# and oras (scripts/interop.sh builds it).
set -euo pipefail
cd "$(dirname "$0")/.."

COSIGN_VERSION=v3.1.3
ORAS_VERSION=v1.3.6
peers=${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}
mkdir -p "$peers"

build_cosign() {
	[ -x "$peers/cosign-$COSIGN_VERSION" ] && return
	echo "building cosign $COSIGN_VERSION from the Go module proxy (once)" >&2
	local mod
	mod=$(mktemp -d)
	(
		cd "$mod"
		go mod init peers >/dev/null 2>&1
		printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/sigstore/cosign/v3/cmd/cosign"\n' >tools.go
		go get github.com/sigstore/cosign/v3@$COSIGN_VERSION >/dev/null 2>&1
		go mod tidy >/dev/null 2>&1
		go build -o "$peers/cosign-$COSIGN_VERSION" github.com/sigstore/cosign/v3/cmd/cosign
	)
	rm -rf "$mod"
}
build_cosign
cosign="$peers/cosign-$COSIGN_VERSION"
oras="$peers/oras-$ORAS_VERSION"
[ -x "$oras" ] || { echo "run scripts/interop.sh first (it builds oras $ORAS_VERSION)" >&2; exit 1; }

work=$(mktemp -d)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$work/config.yml" <<CONFIG
version: 0.1
log: {level: warn}
storage:
  filesystem: {rootdirectory: $work/data}
  delete: {enabled: true}
http: {addr: 127.0.0.1:$port}
CONFIG
docker-registry serve "$work/config.yml" >"$work/registry.log" 2>&1 &
pid=$!
for _ in $(seq 50); do curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1 && break; sleep 0.1; done
reg=127.0.0.1:$port

go build -o "$work/compat-attach" ./cmd/compat-attach
examples/hello/build.sh "$work/oci" >/dev/null
"$oras" cp --from-oci-layout "$work/oci:1.0" --to-plain-http "$reg/hello:1.0" >/dev/null

export COSIGN_PASSWORD=interop-password
"$work/compat-attach" generate-key-pair --output-key-prefix "$work/compat" >/dev/null
"$work/compat-attach" attach --plain-http "$reg/hello:1.0" --spec examples/hello/compat.cue --sign --key "$work/compat.key" -o json >"$work/attached.json"
v3=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1])) if a["platform"]=="linux/amd64/v3"][0]["subject"].split("@")[1])' "$work/attached.json")

echo "\$ compat-attach verify --plain-http $reg/hello@$v3 --key compat.pub"
"$work/compat-attach" verify --plain-http "$reg/hello@$v3" --key "$work/compat.pub"

echo "\$ cosign verify-attestation --key compat.pub --insecure-ignore-tlog --allow-http-registry --type https://compatkit.dev/attestations/image-compatibility/v1 $reg/hello@$v3"
"$cosign" verify-attestation --key "$work/compat.pub" --insecure-ignore-tlog --allow-http-registry \
	--type https://compatkit.dev/attestations/image-compatibility/v1 "$reg/hello@$v3" >"$work/cosign.out" 2>"$work/cosign.err" || {
	cat "$work/cosign.err" "$work/cosign.out" >&2
	exit 1
}
cat "$work/cosign.err"
python3 - "$work/cosign.out" "$v3" <<'PY'
import base64, json, sys
lines = [l for l in open(sys.argv[1]).read().splitlines() if l.strip()]
assert lines, "cosign printed no attestation"
for l in lines:
    env = json.loads(l)
    st = json.loads(base64.b64decode(env["payload"]))
    assert st["predicateType"] == "https://compatkit.dev/attestations/image-compatibility/v1", st["predicateType"]
    assert st["subject"][0]["digest"]["sha256"] == sys.argv[2].split(":")[1], st["subject"]
    print(f'cosign: statement subject {st["subject"][0]["name"]}@sha256:{st["subject"][0]["digest"]["sha256"][:12]}..., '
          f'predicate referrer {st["predicate"]["referrer"]["digest"][:19]}..., {len(st["predicate"]["spec"]["compatibilities"])} compatibility set(s)')
print("cosign verify-attestation: OK")
PY
