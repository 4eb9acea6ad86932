#!/usr/bin/env bash
# Build kube-apiserver and kube-scheduler (Kubernetes v1.34.2) from the Go module proxy once into
# ${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}/kube-v1.34.2/, and install Debian's etcd-server
# when it is missing (as root). Prints `export` lines for the admission webhook's end-to-end tests:
#
#	eval "$(./scripts/kube-tools.sh)" && go test ./test/kube/...
#
# About 8 minutes cold on 2 cores; seconds once cached.
set -euo pipefail
KUBE_VERSION=v1.34.2
STAGING_VERSION=v0.34.2
peers=${COMPATKIT_PEERS:-$HOME/.cache/compatkit-peers}
dir="$peers/kube-$KUBE_VERSION"
mkdir -p "$dir"

if ! command -v etcd >/dev/null 2>&1 && [ ! -x /usr/bin/etcd ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "installing etcd-server (Debian package) for the Kubernetes tests" >&2
		apt-get update -qq >/dev/null
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server >/dev/null
		# The package starts a system etcd on 2379; the tests run their own.
		(systemctl stop etcd || service etcd stop || pkill -x etcd) >/dev/null 2>&1 || true
	else
		echo "etcd is missing: install it (apt-get install etcd-server)" >&2
		exit 1
	fi
fi

if [ ! -x "$dir/kube-apiserver" ] || [ ! -x "$dir/kube-scheduler" ]; then
	echo "building kube-apiserver and kube-scheduler $KUBE_VERSION from the Go module proxy (once, ~8 min)" >&2
	mod=$(mktemp -d)
	trap 'rm -rf "$mod"' EXIT
	(
		cd "$mod"
		go mod init kubetools >/dev/null 2>&1
		printf '//go:build tools\n\npackage tools\n\nimport (\n\t_ "k8s.io/kubernetes/cmd/kube-apiserver"\n\t_ "k8s.io/kubernetes/cmd/kube-scheduler"\n)\n' >tools.go
		# k8s.io/kubernetes requires its staging modules at v0.0.0 and replaces them with ./staging;
		# a consumer replaces each with its published version.
		for m in api apiextensions-apiserver apimachinery apiserver cli-runtime client-go cloud-provider \
			cluster-bootstrap code-generator component-base component-helpers controller-manager cri-api \
			cri-client csi-translation-lib dynamic-resource-allocation endpointslice externaljwt \
			kms kube-aggregator kube-controller-manager kube-proxy kube-scheduler kubectl kubelet \
			metrics mount-utils pod-security-admission sample-apiserver sample-cli-plugin sample-controller; do
			go mod edit -replace "k8s.io/$m=k8s.io/$m@$STAGING_VERSION"
		done
		go mod edit -require "k8s.io/kubernetes@$KUBE_VERSION"
		go mod tidy >/dev/null 2>&1 || go mod tidy
		CGO_ENABLED=0 go build -trimpath -o "$dir/kube-apiserver.tmp" k8s.io/kubernetes/cmd/kube-apiserver
		CGO_ENABLED=0 go build -trimpath -o "$dir/kube-scheduler.tmp" k8s.io/kubernetes/cmd/kube-scheduler
	)
	mv "$dir/kube-apiserver.tmp" "$dir/kube-apiserver"
	mv "$dir/kube-scheduler.tmp" "$dir/kube-scheduler"
fi

etcd_bin=$(command -v etcd || echo /usr/bin/etcd)
echo "export COMPATKIT_KUBE_APISERVER=$dir/kube-apiserver COMPATKIT_KUBE_SCHEDULER=$dir/kube-scheduler COMPATKIT_ETCD=$etcd_bin"
