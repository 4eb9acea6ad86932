#!/usr/bin/env bash
# The check Action's step: compat-attach report of the images on the nodes, failing as fail-on
# says, with the Markdown report as the job summary and the totals as outputs.
set -euo pipefail
. "$(dirname "$0")/../lib.sh"
images="$COMPAT_IMAGES"
if [ "$(lines "$images" | wc -l)" = 1 ] && [ -f "$(lines "$images")" ]; then
	file=$(lines "$images")
else
	file=$(mktemp)
	trap 'rm -f "$file"' EXIT
	lines "$images" >"$file"
fi
args=(report --images "$file" --fail-on "${COMPAT_FAIL_ON:-incompatible}")
while IFS= read -r n; do args+=(--nodes "$n"); done < <(lines "$COMPAT_NODES")
while IFS= read -r n; do args+=(--baseline "$n"); done < <(lines "${COMPAT_BASELINE:-}")
while IFS= read -r h; do args+=(--plain-http-registry "$h"); done < <(lines "${COMPAT_PLAIN_HTTP_REGISTRIES:-}")
if [ -n "${COMPAT_POLICY:-}" ]; then args+=(--policy "$COMPAT_POLICY" --require-trusted); fi
args+=(--no-progress --github-output "${GITHUB_OUTPUT:-/dev/null}" --github-summary "${GITHUB_STEP_SUMMARY:-/dev/null}")
compat-attach "${args[@]}"
