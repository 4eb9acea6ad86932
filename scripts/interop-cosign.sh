#!/usr/bin/env bash
# Interoperability of signatures: what `compat-attach attach --sign --key` pushes (an in-toto
# statement in a DSSE envelope in a sigstore bundle v0.3, a referrer of the image in cosign's
# layout) must be accepted by `cosign verify-attestation --key`, with cosign v3 built from the Go
# module proxy (cached under ${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}), against Debian's
# docker-registry on 127.0.0.1 (no referrers API: the referrers tag schema). Needs docker-registry.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
oras=$(oras_bin)
cosign=$(cosign_bin)
start_registry
push_example "$oras"

export COSIGN_PASSWORD=interop-password
"$work/compat-attach" generate-key-pair --output-key-prefix "$work/compat" >/dev/null
"$work/compat-attach" attach --plain-http "$reg/hello:1.0" --spec examples/hello/compat.cue --sign --key "$work/compat.key" -o json >"$work/attached.json"
v3=$(attached_field linux/amd64/v3 subject)

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

# The other way: a spec attached without a signature, then signed by `cosign attest
# --new-bundle-format` (an in-toto Statement v0.1, cosign's default, in a bundle with a
# parameterised artifactType) with compatkit's predicate; `compat-attach verify` accepts it.
arm=$(attached_field linux/arm64/v8 subject)
"$work/compat-attach" attach --plain-http "$reg/hello@$arm" --spec examples/hello/compat.cue --platform linux/arm64/v8 --created 2026-01-02T03:04:05Z -o json >"$work/arm.json"
"$work/compat-attach" fetch --plain-http "$reg/hello@$arm" -o json >"$work/arm-spec.json" 2>/dev/null
python3 - "$work/arm.json" "$work/arm-spec.json" "$work/predicate.json" <<'PY'
import json, sys
ref = json.load(open(sys.argv[1]))[0]["referrer"].split("@")[1]
spec = json.load(open(sys.argv[2]))
json.dump({"spec": spec, "referrer": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": ref}}, open(sys.argv[3], "w"))
PY
echo "\$ cosign attest --new-bundle-format --key compat.key --type https://compatkit.dev/attestations/image-compatibility/v1 --predicate predicate.json $reg/hello@$arm"
"$cosign" attest --new-bundle-format --key "$work/compat.key" --use-signing-config=false --tlog-upload=false --allow-http-registry --yes \
	--type https://compatkit.dev/attestations/image-compatibility/v1 --predicate "$work/predicate.json" "$reg/hello@$arm" >"$work/attest.out" 2>&1 || {
	cat "$work/attest.out" >&2
	exit 1
}
echo "\$ compat-attach verify --plain-http $reg/hello@$arm --key compat.pub"
"$work/compat-attach" verify --plain-http "$reg/hello@$arm" --key "$work/compat.pub" | tee "$work/verify-cosign.out"
grep -q "2026-01-02T03:04:05Z  VERIFIED" "$work/verify-cosign.out" || {
	echo "compat-attach verify does not accept cosign attest's bundle" >&2
	exit 1
}
# What cosign wrote: the bundle's artifactType and the statement's _type.
"$oras" discover --plain-http --format json "$reg/hello@$arm" >"$work/discover-arm.json"
python3 - "$work/discover-arm.json" <<'PY'
import json, sys
types = sorted({r["artifactType"] for r in json.load(open(sys.argv[1])).get("referrers", [])})
print("referrer artifactTypes:", ", ".join(types))
PY
echo "compat-attach verify of cosign attest: OK"
