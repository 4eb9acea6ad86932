#!/usr/bin/env bash
# Installs compat-attach for the Actions of this repository: built with Go from the Action's own
# source (so it is pinned by the ref the workflow uses, e.g. compatkit/compatkit@v1), once per
# source: the binary is kept in the runner's tool cache under a digest of the sources, and the
# directory is added to PATH (GITHUB_PATH). Output: path (the binary).
set -euo pipefail
src=$(cd "$(dirname "$0")/../.." && pwd)
cd "$src"
key=$( (cat go.mod go.sum; find cmd pkg internal -name '*.go' -not -name '*_test.go' | LC_ALL=C sort | xargs cat) | sha256sum | cut -c1-16)
dir="${RUNNER_TOOL_CACHE:-$HOME/.cache}/compatkit/compat-attach/$key"
if [ ! -x "$dir/compat-attach" ]; then
	echo "building compat-attach from $src ($key)" >&2
	mkdir -p "$dir"
	CGO_ENABLED=0 go build -trimpath -o "$dir/compat-attach.tmp" ./cmd/compat-attach
	mv "$dir/compat-attach.tmp" "$dir/compat-attach"
fi
"$dir/compat-attach" --version >&2
if [ -n "${GITHUB_PATH:-}" ]; then echo "$dir" >>"$GITHUB_PATH"; fi
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "path=$dir/compat-attach" >>"$GITHUB_OUTPUT"; fi
export PATH="$dir:$PATH"
