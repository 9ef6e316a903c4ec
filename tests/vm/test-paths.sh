#!/bin/bash
# The guest works from the caller's directory wherever it lies: copies of
# tests/vm under /tmp and under /root (where the guest mounts scratch
# file systems) run a command that prints its working directory and reads
# a file of the copy; a working directory the guest cannot reach fails at
# once with an error naming it. Ends with "N passed, N failed, N skipped";
# exit 77 when no guest can be booted here.
set -u
here=$(cd "$(dirname "$0")" && pwd)
passed=0 failed=0 skipped=0
made=()
trap 'rm -rf "${made[@]}"' EXIT

result() { # result LABEL pass|fail|skip [DETAIL]
	case $2 in
	pass) passed=$((passed + 1)); echo "PASS $1" ;;
	skip) skipped=$((skipped + 1)); echo "SKIP $1: $3" ;;
	*) failed=$((failed + 1)); echo "FAIL $1"; [ -z "${3:-}" ] || printf '%s\n' "$3" | sed 's/^/    /' ;;
	esac
}

for base in /tmp /root; do
	label="guest sees a tree under $base"
	copy=$(mktemp -d "$base/sbx-vmpath.XXXXXX") || { result "$label" fail "mktemp in $base failed"; continue; }
	made+=("$copy")
	mkdir -p "$copy/tests"
	cp -a "$here" "$copy/tests/vm"
	marker=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	echo "$marker" > "$copy/marker"
	out=$(cd "$copy" && tests/vm/run.sh --timeout 300 -- sh -c 'pwd; cat marker' 2>&1)
	rc=$?
	if [ $rc -eq 77 ]; then
		result "$label" skip "no guest here: $(printf '%s\n' "$out" | grep 'SKIP' | tail -1)"
		continue
	fi
	if [ $rc -eq 0 ] && printf '%s\n' "$out" | grep -qxF "$copy" && printf '%s\n' "$out" | grep -qxF "$marker"; then
		result "$label" pass
	else
		result "$label" fail "exit $rc; expected lines '$copy' and '$marker' in:
$out"
	fi
done

# A working directory that is gone by the time the guest boots: the guest
# must say so and fail, not run the command from somewhere else.
label="guest refuses a working directory it cannot reach"
gone=$(mktemp -d /tmp/sbx-vmgone.XXXXXX)
out=$(cd "$gone" && rmdir "$gone" && "$here/run.sh" --timeout 300 -- sh -c 'echo ran-in-$(pwd)' 2>&1)
rc=$?
if [ $rc -eq 77 ]; then
	result "$label" skip "no guest here"
elif [ $rc -ne 0 ] && printf '%s\n' "$out" | grep -qF "cannot enter the working directory $gone" &&
	! printf '%s\n' "$out" | grep -q '^ran-in-'; then
	result "$label" pass
else
	result "$label" fail "exit $rc; expected a failure naming $gone in:
$out"
fi

echo "$passed passed, $failed failed, $skipped skipped"
if [ $failed -eq 0 ] && [ $passed -eq 0 ] && [ $skipped -gt 0 ]; then
	exit 77
fi
[ $failed -eq 0 ]
