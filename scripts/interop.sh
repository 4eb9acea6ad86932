#!/usr/bin/env bash
# Interoperability: what compat-attach attaches must be seen by `oras discover` and evaluated by
# NFD's `nfd compat validate-node`, both built from the Go module proxy (cached under
# ${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}), against Debian's docker-registry on 127.0.0.1
# (no referrers API: the referrers tag schema). Needs docker-registry (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

ORAS_VERSION=v1.3.6
NFD_VERSION=v0.18.3
peers=${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}
mkdir -p "$peers"

build_peers() {
	[ -x "$peers/oras-$ORAS_VERSION" ] && [ -x "$peers/nfd-$NFD_VERSION" ] && return
	echo "building oras $ORAS_VERSION and nfd $NFD_VERSION from the Go module proxy (once)" >&2
	local mod
	mod=$(mktemp -d)
	(
		cd "$mod"
		go mod init peers >/dev/null 2>&1
		printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "oras.land/oras/cmd/oras"\n\t_ "sigs.k8s.io/node-feature-discovery/cmd/nfd"\n)\n' >tools.go
		go get oras.land/oras@$ORAS_VERSION sigs.k8s.io/node-feature-discovery@$NFD_VERSION \
			sigs.k8s.io/node-feature-discovery/api/nfd@$NFD_VERSION >/dev/null 2>&1
		go mod tidy >/dev/null 2>&1
		go build -o "$peers/oras-$ORAS_VERSION" oras.land/oras/cmd/oras
		go build -o "$peers/nfd-$NFD_VERSION" sigs.k8s.io/node-feature-discovery/cmd/nfd
	)
	rm -rf "$mod"
}
build_peers
oras="$peers/oras-$ORAS_VERSION"
nfd="$peers/nfd-$NFD_VERSION"

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
"$work/compat-attach" attach --plain-http "$reg/hello:1.0" --spec examples/hello/compat.cue -o json >"$work/attached.json"

v3=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1])) if a["platform"]=="linux/amd64/v3"][0]["subject"].split("@")[1])' "$work/attached.json")
referrer=$(python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1])) if a["platform"]=="linux/amd64/v3"][0]["referrer"].split("@")[1])' "$work/attached.json")

echo "\$ oras discover --plain-http $reg/hello@$v3"
"$oras" discover --plain-http "$reg/hello@$v3"
"$oras" discover --plain-http --format json "$reg/hello@$v3" >"$work/discover.json"
python3 - "$work/discover.json" "$referrer" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
refs = [r for r in d.get("referrers", []) if r["digest"] == sys.argv[2]]
assert refs, f"oras discover does not list {sys.argv[2]}: {d}"
assert refs[0]["artifactType"] == "application/vnd.nfd.image-compatibility.v1alpha1", refs[0]
print("oras discover: OK")
PY

echo "\$ nfd compat validate-node --plain-http --image $reg/hello:1.0 --platform linux/amd64/v3"
"$nfd" compat validate-node --plain-http --image "$reg/hello:1.0" --platform linux/amd64/v3 --output-json 2>/dev/null >"$work/nfd.json"
"$work/compat-attach" check --plain-http "$reg/hello:1.0" --platform linux/amd64/v3 -o json >"$work/check.json" || [ $? = 3 ]
python3 - "$work/nfd.json" "$work/check.json" <<'PY'
import json, sys
nfd = json.load(open(sys.argv[1]))
ours = json.load(open(sys.argv[2]))["specs"][0]["result"]["sets"]
assert len(nfd) == len(ours) and nfd, (nfd, ours)
for n, o in zip(nfd, ours):
    assert n.get("tag", "") == o.get("tag", ""), (n.get("tag"), o.get("tag"))
    for nr, orr in zip(n["rules"], o["rules"]):
        assert nr["name"] == orr["name"] and nr["isMatch"] == orr["matched"], (nr["name"], nr["isMatch"], orr)
        print(f'nfd: set {n.get("tag")!r} rule {nr["name"]!r}: isMatch={nr["isMatch"]} (compat-attach agrees)')
print("nfd compat validate-node: OK")
PY
