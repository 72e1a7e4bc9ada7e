# Shared helpers for CLI tests; source it first. Each test runs in its own temp directory.
set -u
KB=${KB_BIN:?KB_BIN must point at the kb binary}
JC=${KB_JSONCHECK:?KB_JSONCHECK must point at jsoncheck}
SRC=${KB_SRC:?KB_SRC must point at the source tree}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 1
export KB_PATH="$T/kb.lmdb"
fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

# expect_code CODE CMD...: run CMD, stdout to $T/out, stderr to $T/err, check exit code
expect_code() {
    local want=$1; shift
    "$@" >"$T/out" 2>"$T/err"
    local got=$?
    if [ "$got" != "$want" ]; then
        fail "'$*' exited $got, expected $want"; sed 's/^/  stderr: /' "$T/err" | head -20 >&2
    fi
}

# expect_err PATTERN: the last command's stderr matches the extended regex
expect_err() { grep -qE -- "$1" "$T/err" || { fail "stderr lacks /$1/"; sed 's/^/  stderr: /' "$T/err" | head -20 >&2; }; }
# expect_out PATTERN: the last command's stdout matches
expect_out() { grep -qE -- "$1" "$T/out" || { fail "stdout lacks /$1/"; head -20 "$T/out" | sed 's/^/  stdout: /' >&2; }; }
# json PATH OP [VALUE]: assertion on the last command's stdout (one JSON document)
json() { "$JC" "$T/out" "$@" || fail "json $*"; }
# jsonl PATH OP [VALUE]: assertion on the last command's stdout as JSON Lines
jsonl() { "$JC" -l "$T/out" "$@" || fail "jsonl $*"; }

finish() {
    if [ "$fails" -gt 0 ]; then echo "$fails check(s) failed" >&2; exit 1; fi
    echo "ok"; exit 0
}
