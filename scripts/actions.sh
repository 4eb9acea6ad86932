#!/usr/bin/env bash
# The GitHub Actions of this repository: actionlint (built from the Go module proxy, cached with
# the other peers) over the example workflows, in a scratch project where they sit in
# .github/workflows beside action.yml and actions/, so that their "uses: ./..." steps are checked
# against the local actions' inputs and outputs. (The actions' steps themselves run in
# `go test ./actions`, against local registries.)
set -euo pipefail
cd "$(dirname "$0")/.."

. scripts/lib.sh
actionlint=$(actionlint_bin)
proj=$(mktemp -d)
trap 'rm -rf "$proj"' EXIT
mkdir -p "$proj/.github/workflows"
cp examples/workflows/*.yml "$proj/.github/workflows/"
cp action.yml "$proj/"
cp -r actions "$proj/"
git -C "$proj" init -q
echo "\$ actionlint examples/workflows/*.yml (with the local actions)"
(cd "$proj" && "$actionlint" -color=false)
echo "actionlint: OK ($(ls examples/workflows/*.yml | wc -l) workflows)"
