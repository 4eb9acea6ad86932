# Shared by the interoperability scripts (source it; it is not run on its own).
#
# Peers (oras, nfd, cosign) are built once from the Go module proxy into
# ${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}; a registry is Debian's docker-registry on a free
# port of 127.0.0.1 (no referrers API: clients use the referrers tag schema).

ORAS_VERSION=v1.3.6
NFD_VERSION=v0.19.0
COSIGN_VERSION=v3.1.3
peers=${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}
mkdir -p "$peers"

# build_peer NAME VERSION PACKAGE MODULE@VERSION...: build PACKAGE into $peers/NAME-VERSION once,
# in a throw-away module requiring the given modules; prints the binary's path.
build_peer() {
	local name=$1 version=$2 pkg=$3
	shift 3
	local bin="$peers/$name-$version"
	if [ ! -x "$bin" ]; then
		echo "building $name $version from the Go module proxy (once)" >&2
		local mod
		mod=$(mktemp -d)
		(
			cd "$mod"
			go mod init peers >/dev/null 2>&1
			printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$pkg" >tools.go
			go get "$@" >/dev/null 2>&1
			go mod tidy >/dev/null 2>&1
			go build -o "$bin" "$pkg"
		)
		rm -rf "$mod"
	fi
	echo "$bin"
}

oras_bin() { build_peer oras "$ORAS_VERSION" oras.land/oras/cmd/oras "oras.land/oras@$ORAS_VERSION"; }
nfd_bin() {
	build_peer nfd "$NFD_VERSION" sigs.k8s.io/node-feature-discovery/cmd/nfd \
		"sigs.k8s.io/node-feature-discovery@$NFD_VERSION" "sigs.k8s.io/node-feature-discovery/api/nfd@$NFD_VERSION"
}
cosign_bin() { build_peer cosign "$COSIGN_VERSION" github.com/sigstore/cosign/v3/cmd/cosign "github.com/sigstore/cosign/v3@$COSIGN_VERSION"; }

# start_registry: a scratch directory $work (removed on exit) and docker-registry serving it at
# $reg (127.0.0.1:PORT), stopped on exit.
start_registry() {
	work=$(mktemp -d)
	registry_pid=
	trap '[ -n "$registry_pid" ] && kill "$registry_pid" 2>/dev/null; rm -rf "$work"' EXIT
	local port
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
	registry_pid=$!
	reg=127.0.0.1:$port
	for _ in $(seq 100); do
		curl -fsS "http://$reg/v2/" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "docker-registry did not start on $reg:" >&2
	cat "$work/registry.log" >&2
	return 1
}

# push_example ORAS: build compat-attach into $work and the example image into $work/oci, and copy
# the image to $reg/hello:1.0.
push_example() {
	go build -o "$work/compat-attach" ./cmd/compat-attach
	examples/hello/build.sh "$work/oci" >/dev/null
	"$1" cp --from-oci-layout "$work/oci:1.0" --to-plain-http "$reg/hello:1.0" >/dev/null
}

# attached_field PLATFORM FIELD: from attach -o json in $work/attached.json, the digest part of
# FIELD (subject or referrer) for PLATFORM.
attached_field() {
	python3 -c 'import json,sys; print([a for a in json.load(open(sys.argv[1])) if a["platform"]==sys.argv[2]][0][sys.argv[3]].split("@")[1])' \
		"$work/attached.json" "$1" "$2"
}

BUILDKIT_VERSION=v0.34.2
# buildkitd and buildctl, built once from the Go module proxy (about 13 minutes cold on 2 cores).
buildkitd_bin() { build_peer buildkitd "$BUILDKIT_VERSION" github.com/moby/buildkit/cmd/buildkitd "github.com/moby/buildkit@$BUILDKIT_VERSION"; }
buildctl_bin() { build_peer buildctl "$BUILDKIT_VERSION" github.com/moby/buildkit/cmd/buildctl "github.com/moby/buildkit@$BUILDKIT_VERSION"; }

ACTIONLINT_VERSION=v1.7.12
actionlint_bin() { build_peer actionlint "$ACTIONLINT_VERSION" github.com/rhysd/actionlint/cmd/actionlint "github.com/rhysd/actionlint@$ACTIONLINT_VERSION"; }
