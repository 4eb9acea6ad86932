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
