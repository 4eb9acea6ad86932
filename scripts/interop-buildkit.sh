#!/usr/bin/env bash
# BuildKit: the frontend (buildkit/, cmd/compat-frontend) in a real buildkitd under Debian's runc,
# against Debian's docker-registry on 127.0.0.1. Builds the frontend's image with buildkitd
# (buildkit/Dockerfile, target prebuilt) and pushes it; builds examples/hello through the frontend
# for linux/amd64 and linux/amd64/v3 and pushes it with its attestations; then compat-attach check
# and select read the spec from the pushed image, `attach --from-attestations` publishes it for NFD,
# and `nfd compat validate-node` evaluates it. buildkitd and buildctl are built once from the Go
# module proxy (cached with the other peers; about 7-13 minutes cold on 2 cores).
#
# Needs root, runc (apt-get install runc) and docker-registry; skips, loudly, where runc cannot
# run a container.
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
if [ "$(id -u)" != 0 ]; then
	echo "SKIPPED: scripts/interop-buildkit.sh needs root (buildkitd's OCI worker with runc)" >&2
	exit 0
fi
if ! command -v runc >/dev/null 2>&1; then
	if command -v apt-get >/dev/null 2>&1; then
		echo "installing runc (Debian package) for buildkitd" >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runc >/dev/null
	fi
fi
if ! command -v runc >/dev/null 2>&1; then
	echo "SKIPPED: runc is missing (apt-get install runc): the BuildKit frontend was not tested against buildkitd" >&2
	exit 0
fi
buildkitd=$(buildkitd_bin)
buildctl=$(buildctl_bin)
nfd=$(nfd_bin)
start_registry
bk=$work/buildkit
mkdir -p "$bk"
cat >"$bk/buildkitd.toml" <<TOML
[registry."$reg"]
  http = true
  insecure = true
[worker.oci]
  enabled = true
[worker.containerd]
  enabled = false
TOML
"$buildkitd" --root "$bk/root" --addr "unix://$bk/buildkitd.sock" --config "$bk/buildkitd.toml" >"$bk/buildkitd.log" 2>&1 &
buildkitd_pid=$!
cleanup() {
	kill "$buildkitd_pid" 2>/dev/null || true
	wait "$buildkitd_pid" 2>/dev/null || true
	# buildkitd may leave its snapshots mounted: unmount them before removing the scratch directory.
	grep -o " $bk/root[^ ]*" /proc/mounts 2>/dev/null | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
	if [ -n "$registry_pid" ]; then kill "$registry_pid" 2>/dev/null || true; fi
	rm -rf "$work" 2>/dev/null || true
}
trap cleanup EXIT
bctl() { "$buildctl" --addr "unix://$bk/buildkitd.sock" "$@"; }
for _ in $(seq 100); do
	bctl debug workers >/dev/null 2>&1 && break
	sleep 0.2
done
if ! bctl debug workers >/dev/null 2>&1; then
	echo "buildkitd did not start:" >&2
	tail -20 "$bk/buildkitd.log" >&2
	exit 1
fi

# The frontend's image, built by buildkitd from a static binary, pushed to the registry.
mkdir -p "$work/fctx/bin"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$work/fctx/bin/compat-frontend" ./cmd/compat-frontend
go build -o "$work/compat-attach" ./cmd/compat-attach
echo "\$ buildctl build --frontend dockerfile.v0 (buildkit/Dockerfile, target prebuilt) -> $reg/compat-frontend:test"
if ! bctl build --progress=plain --frontend dockerfile.v0 --local context="$work/fctx" --local dockerfile=buildkit \
	--opt target=prebuilt --output "type=image,name=$reg/compat-frontend:test,push=true" >"$bk/frontend-build.log" 2>&1; then
	if grep -qiE "runc|cgroup|namespace|operation not permitted" "$bk/frontend-build.log"; then
		echo "SKIPPED: runc cannot run a container here; the BuildKit frontend was not tested against buildkitd:" >&2
		tail -5 "$bk/frontend-build.log" >&2
		exit 0
	fi
	cat "$bk/frontend-build.log" >&2
	exit 1
fi

# examples/hello through the frontend, for two platforms, with its attestations.
examples/hello/build.sh "$work/oci" >/dev/null
echo "\$ buildctl build --frontend gateway.v0 --opt source=$reg/compat-frontend:test --opt platform=linux/amd64,linux/amd64/v3 (examples/hello) -> $reg/hello:built"
if ! bctl build --progress=plain --frontend gateway.v0 --opt source="$reg/compat-frontend:test" \
	--local context=examples/hello --local dockerfile=examples/hello --opt platform=linux/amd64,linux/amd64/v3 \
	--output "type=image,name=$reg/hello:built,push=true,oci-mediatypes=true,oci-artifact=true" >"$bk/hello-build.log" 2>&1; then
	cat "$bk/hello-build.log" >&2
	exit 1
fi
grep -i "compat" "$bk/hello-build.log" | head -5 || true

# compat-mode=warn with a broken document: the image is built, and the warning shows.
mkdir -p "$work/warnctx/build"
cp examples/hello/Dockerfile "$work/warnctx/"
cp -r examples/hello/build/bin "$work/warnctx/build/"
printf 'platforms: "linux/amd64": {version: "v1alpha1", compatibilities: [{weigth: 1, rules: []}]}\n' >"$work/warnctx/compat.cue"
echo "\$ buildctl build ... --opt compat-mode=warn (a document with a typo)"
bctl build --progress=plain --frontend gateway.v0 --opt source="$reg/compat-frontend:test" --opt compat-mode=warn \
	--local context="$work/warnctx" --local dockerfile="$work/warnctx" \
	--output "type=image,name=$reg/hello:warn,push=true" >"$bk/warn-build.log" 2>&1 || { cat "$bk/warn-build.log" >&2; exit 1; }
grep -q "compat: no compatibility attestation" "$bk/warn-build.log" || { echo "the warning of compat-mode=warn is not shown:" >&2; cat "$bk/warn-build.log" >&2; exit 1; }
grep "compat: no compatibility attestation" "$bk/warn-build.log" | head -2

v3=$(python3 - <<'PY'
import json
print(json.dumps({"flags": {"cpu.cpuid": {"elements": {f: {} for f in "CMOV CMPXCHG8 FXSR MMX SSE SSE2 X87 CX16 LAHF POPCNT SSE3 SSE4 SSE42 SSSE3 AVX AVX2 BMI1 BMI2 F16C FMA3 LZCNT MOVBE OSXSAVE".split()}}},
 "attributes": {"kernel.version": {"elements": {"full": "6.1.0", "major": "6", "minor": "1"}},
                "compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}))
PY
)
v2=$(python3 - <<'PY'
import json
print(json.dumps({"flags": {"cpu.cpuid": {"elements": {f: {} for f in "CMOV CMPXCHG8 FXSR MMX SSE SSE2 X87 CX16 LAHF POPCNT SSE3 SSE4 SSE42 SSSE3".split()}}},
 "attributes": {"kernel.version": {"elements": {"full": "6.1.0", "major": "6", "minor": "1"}},
                "compatkit.platform": {"elements": {"os": "linux", "arch": "amd64"}}}}))
PY
)
echo "$v3" >"$work/v3.json"
echo "$v2" >"$work/v2.json"

echo "\$ compat-attach discover --plain-http $reg/hello:built"
"$work/compat-attach" discover --plain-http "$reg/hello:built"
echo "\$ compat-attach check --plain-http $reg/hello:built --platform linux/amd64/v3 --features v3.json"
"$work/compat-attach" check --plain-http "$reg/hello:built" --platform linux/amd64/v3 --features "$work/v3.json" 2>"$work/check.err" | tee "$work/check.out"
cat "$work/check.err"
grep -q "Verdict: COMPATIBLE (score 90)" "$work/check.out"
grep -q "build attestation" "$work/check.err"
echo "\$ compat-attach select --plain-http $reg/hello:built --features v2.json   (no AVX2: the v1 build)"
sel=$("$work/compat-attach" select --plain-http "$reg/hello:built" --features "$work/v2.json" -o json)
echo "$sel" | python3 -c 'import json,sys; d=json.load(sys.stdin); r=d["ranking"][0]; print(r["platform"], r["verdict"], r["score"]); assert r["platform"]=="linux/amd64" and r["compatible"], d'

echo "\$ compat-attach attach --plain-http $reg/hello:built --from-attestations"
"$work/compat-attach" attach --plain-http "$reg/hello:built" --from-attestations
echo "\$ nfd compat validate-node --plain-http --image $reg/hello:built --platform linux/amd64/v3"
"$nfd" compat validate-node --plain-http --image "$reg/hello:built" --platform linux/amd64/v3 --output-json 2>/dev/null >"$work/nfd.json"
python3 - "$work/nfd.json" <<'PY'
import json, sys
sets = json.load(open(sys.argv[1]))
assert sets and sets[0].get("tag") == "x86-64-v3", sets
for r in sets[0]["rules"]:
    print(f'nfd: set {sets[0]["tag"]!r} rule {r["name"]!r}: isMatch={r["isMatch"]}')
print("BuildKit frontend: OK")
PY
