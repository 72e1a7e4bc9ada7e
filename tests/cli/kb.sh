# The kb program itself: overview, version, help for every command, unknown commands.
. "$(dirname "$0")/lib.sh"

expect_code 2 $KB
expect_out "^usage: kb "
expect_code 0 $KB --help
expect_out "^commands:"
expect_code 0 $KB --version
expect_out "^kb [0-9]+\\.[0-9]+\\.[0-9]+$"
expect_code 0 $KB help
expect_out "^  ingest +"

# every listed command has help three ways, with usage, options and exit codes
cmds=$($KB help | sed -n 's/^  \([a-z-]*\)  .*/\1/p')
[ -n "$cmds" ] || fail "no commands listed"
for c in $cmds; do
    expect_code 0 $KB help "$c"
    expect_out "^usage: kb $c"
    expect_code 0 $KB "$c" --help
    expect_out "^usage: kb $c"
done
for c in init ingest list show export stats check; do
    echo "$cmds" | grep -qx "$c" || fail "command '$c' is not listed"
done

expect_code 2 $KB frobnicate
expect_err "^kb: 'frobnicate' is not a kb command; see 'kb help'$"
expect_code 2 $KB help frobnicate
expect_err "'frobnicate' is not a kb command"

# a full disk must not look like success
if [ -w /dev/full ]; then
    $KB --help > /dev/full 2>"$T/err"
    [ $? = 1 ] || fail "writing help to /dev/full did not fail"
fi
finish
