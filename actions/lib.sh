# Shared by the Action's scripts (source it). Inputs come only through COMPAT_* environment
# variables, never through expressions inlined in scripts.

# spec_files: the document's files: the file given, or the .cue files of the directory given.
spec_files() {
	if [ -d "$COMPAT_SPEC" ]; then
		compgen -G "$COMPAT_SPEC/*.cue" || { echo "::error::$COMPAT_SPEC holds no .cue file" >&2; return 1; }
	else
		printf '%s\n' "$COMPAT_SPEC"
	fi
}

# lines VAR: the non-empty, non-comment lines of VAR's value, trimmed.
lines() {
	printf '%s\n' "$1" | sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' | grep -v '^$' || true
}

# truthy VALUE: true for true, yes, 1.
truthy() {
	case "${1,,}" in true | yes | 1) return 0 ;; esac
	return 1
}
