#!/usr/bin/env bash
# The Action's attach step: attach the document to every image (and sign), writing the outputs
# and the job summary through compat-attach's --github-output and --github-summary.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
mapfile -t files < <(spec_files)
mapfile -t images < <(lines "$COMPAT_IMAGES")
if [ "${#images[@]}" = 0 ]; then
	echo "::error::the images input is empty: give one image per line" >&2
	exit 2
fi
for i in "${images[@]}"; do
	case "$i" in
	*@sha256:*) ;;
	*) echo "::warning::$i is not pinned by digest: the tag may name another image by the time it is read; prefer REPO@sha256:..." >&2 ;;
	esac
done
args=(attach "${images[@]}")
for f in "${files[@]}"; do args+=(--spec "$f"); done
while IFS= read -r p; do args+=(--platform "$p"); done < <(lines "${COMPAT_PLATFORMS:-}")
case "${COMPAT_BASE:-}" in
"") ;;
none) args+=(--no-base) ;;
*) args+=(--base "$COMPAT_BASE") ;;
esac
truthy "${COMPAT_SKIP_UNCHANGED:-true}" && args+=(--skip-unchanged)
truthy "${COMPAT_PLAIN_HTTP:-false}" && args+=(--plain-http)
[ -n "${COMPAT_SIGNATURE_REPOSITORY:-}" ] && args+=(--signature-repository "$COMPAT_SIGNATURE_REPOSITORY")
case "${COMPAT_SIGN:-none}" in
none) ;;
keyless)
	args+=(--sign --keyless)
	[ -n "${COMPAT_FULCIO_URL:-}" ] && args+=(--fulcio-url "$COMPAT_FULCIO_URL")
	[ -n "${COMPAT_REKOR_URL:-}" ] && args+=(--rekor-url "$COMPAT_REKOR_URL")
	;;
key)
	if [ -z "${COMPAT_KEY:-}" ]; then
		echo "::error::sign: key needs the key input (a secret holding the private key)" >&2
		exit 2
	fi
	keydir=$(mktemp -d)
	trap 'rm -rf "$keydir"' EXIT
	(umask 077 && printf '%s\n' "$COMPAT_KEY" >"$keydir/signing.key")
	export COSIGN_PASSWORD="${COMPAT_KEY_PASSWORD:-}"
	args+=(--sign --key "$keydir/signing.key")
	;;
*)
	echo "::error::sign: $COMPAT_SIGN: use keyless, key or none" >&2
	exit 2
	;;
esac
args+=(--github-output "${GITHUB_OUTPUT:-/dev/null}" --github-summary "${GITHUB_STEP_SUMMARY:-/dev/null}")
compat-attach "${args[@]}"
