#!/usr/bin/env bash
# Interoperability: what compat-attach attaches must be seen by `oras discover` and evaluated by
# NFD's `nfd compat validate-node`, both built from the Go module proxy (cached under
# ${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}), against Debian's docker-registry on 127.0.0.1
# (no referrers API: the referrers tag schema). Needs docker-registry (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
oras=$(oras_bin)
nfd=$(nfd_bin)
start_registry
push_example "$oras"
"$work/compat-attach" attach --plain-http "$reg/hello:1.0" --spec examples/hello/compat.cue -o json >"$work/attached.json"
v3=$(attached_field linux/amd64/v3 subject)
referrer=$(attached_field linux/amd64/v3 referrer)

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
