#!/usr/bin/env bash
# The Action's vet step: check the document, then compile every spec of it into a directory
# (output spec-dir).
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mapfile -t files < <(spec_files)
compat-attach vet "${files[@]}"
out="${RUNNER_TEMP:-/tmp}/compatkit-specs"
rm -rf "$out"
compat-attach export "${files[@]}" --out-dir "$out" --github-output "${GITHUB_OUTPUT:-/dev/null}"
