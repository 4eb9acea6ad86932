#!/usr/bin/env bash
# Runs every fuzz target of the module (go test -fuzz) for a while each: the spec parser, the CUE
# loader, YAML documents, referrers listings, host feature files, kubectl node lists, tool
# outputs, signature bundles. Seeds are the shipped examples and templates and real-world outputs
# (in each target); what a run finds is kept in the package's testdata/fuzz and fails `go test`.
#
# Usage: scripts/fuzz.sh [DURATION]     (default 10s each; CI runs the default, a few minutes each
#                                        before a release: scripts/fuzz.sh 3m)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-10s}
status=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "fuzz $pkg $name ($fuzztime)" >&2
	if ! go test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" >/tmp/fuzz-$$.log 2>&1; then
		cat /tmp/fuzz-$$.log >&2
		status=1
	fi
done < <(grep -rHo --include='*_test.go' '^func Fuzz[A-Za-z0-9_]*' pkg internal cmd | sed 's/func //')
rm -f /tmp/fuzz-$$.log
exit $status
