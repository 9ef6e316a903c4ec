#!/bin/bash
# The whole test suite, from a fresh Debian/Ubuntu machine: dependencies,
# a normal and an ASan/UBSan build, the Check unit tests, the end-to-end
# suite against a real daemon on this host and again in a QEMU guest with
# a pure cgroup v2 hierarchy, a part of it against the sanitizer build,
# fuzzing, the DEB and RPM packages, and make distcheck. Ends with one line
# "N passed, N failed, N skipped" counting individual tests.
set -u
cd "$(dirname "$0")/.."
top=$(pwd)
if [ "$(id -u)" -ne 0 ]; then
	echo "run-all: run as root: the suites create namespaces, mounts and cgroups" >&2
	exit 1
fi
jobs=$(nproc)
passed=0 failed=0 skipped=0
failures=()

note() { printf '\n=== %s ===\n' "$*"; }
# What a failed stage printed is kept and shown again at the very end, so
# that the last lines of a long run say why it failed.
stagelogs=$(mktemp -d)
trap 'rm -rf "$stagelogs"' EXIT
keep_log() { # keep_log FILE LABEL: FILE is what LABEL printed; kept if it failed
	local f n
	for f in "${failures[@]}"; do
		[ "$f" = "$2" ] || continue
		n=$(ls "$stagelogs" | wc -l)
		{ echo "--- $2"; cat "$1"; } > "$stagelogs/$(printf '%02d' "$n")"
		return 0
	done
}
count() { # count PASSED FAILED SKIPPED STAGE
	passed=$((passed + $1)); failed=$((failed + $2)); skipped=$((skipped + $3))
	[ "$2" -eq 0 ] || failures+=("$4")
}
fatal_stage() { # a stage that could not run at all counts as one failure
	echo "run-all: $1 failed" >&2
	count 0 1 0 "$1"
}

note "dependencies"
./contrib/install-deps.sh || { echo "run-all: cannot install dependencies" >&2; exit 1; }
# Other tools that read what the project writes (tarballs); the tests that
# use them skip, saying so, when they cannot be installed.
for p in podman libarchive-tools; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$p" >/dev/null 2>&1 ||
		echo "run-all: cannot install $p; the tests that need it are skipped" >&2
done
# Neighbours on the host's network (test_hostnet.py starts them itself, in
# network namespaces of its own). Installed as programs only: a
# policy-rc.d keeps their services from starting on the machine's network,
# and they are disabled at boot.
for p in docker.io firewalld; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" && continue
	policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		policy=/usr/sbin/policy-rc.d
		printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod 755 "$policy"
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$p" >/dev/null 2>&1 ||
		echo "run-all: cannot install $p; the tests that need it are skipped" >&2
	[ -z "$policy" ] || rm -f "$policy"
	for u in docker.service docker.socket containerd.service firewalld.service; do
		[ -e "/lib/systemd/system/$u" ] && systemctl disable --quiet "$u" 2>/dev/null
		[ -e "/lib/systemd/system/$u" ] && systemctl is-active --quiet "$u" 2>/dev/null &&
			systemctl stop "$u"
	done
done

note "autogen"
./autogen.sh >/dev/null 2>&1 || { echo "run-all: autogen.sh failed" >&2; exit 1; }

# build DIR [configure args...]
build() {
	local dir=$1; shift
	mkdir -p "$dir"
	(cd "$dir" && "$top/configure" --quiet "$@" && make -j"$jobs" >make.log 2>&1) || {
		tail -40 "$dir/make.log" 2>/dev/null
		return 1
	}
}

# Check prints "NN%: Checks: N, Failures: F, Errors: E" per program.
unit_tests() { # unit_tests DIR LABEL
	local dir=$1 label=$2
	(cd "$dir" && make -j"$jobs" check >check.log 2>&1)
	local rc=$?
	local p=0 f=0 s=0 n fl er
	while read -r n fl er; do
		p=$((p + n - fl - er)); f=$((f + fl + er))
	done < <(cat "$dir"/tests/unit/*.log 2>/dev/null |
		sed -n 's/.*Checks: \([0-9]*\), Failures: \([0-9]*\), Errors: \([0-9]*\).*/\1 \2 \3/p')
	s=$(grep -c '^SKIP:' "$dir/check.log" || true)
	if [ $rc -ne 0 ] && [ $f -eq 0 ]; then f=1; fi
	cat "$dir"/tests/unit/*.log 2>/dev/null | grep -E '^[^:]+:[0-9]+:[EF]:' || true
	echo "$label: $p passed, $f failed, $s skipped"
	count $p $f $s "$label"
}

integration() { # integration BUILDDIR LABEL [RUNNER...]
	local out bd=$1 label=$2
	shift 2
	out=$(mktemp)
	"$@" python3 tests/integration/run.py --builddir "$bd" 2>&1 | tee "$out"
	local rc=${PIPESTATUS[0]}
	if [ "$rc" -eq 77 ] && ! grep -qE '^[0-9]+ passed' "$out"; then
		echo "$label: skipped (see above)"
		count 0 0 1 "$label"
		rm -f "$out"
		return
	fi
	local line
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -1)
	if [ -z "$line" ]; then
		fatal_stage "$label"
	else
		set -- $line
		count "$1" "$3" "$5" "$label"
		echo "$label: $line"
	fi
	keep_log "$out" "$label"
	rm -f "$out"
}

# script_stage LABEL COMMAND...: a script that ends with the counting line
# (exit 77 with no such line: the whole stage skipped).
script_stage() {
	local out label=$1 rc line
	shift
	out=$(mktemp)
	"$@" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$out" | tail -1)
	if [ "$rc" -eq 77 ] && [ -z "$line" ]; then
		count 0 0 1 "$label"
	elif [ -n "$line" ]; then
		set -- $line
		count "$1" "$3" "$5" "$label"
		[ "$rc" -eq 0 ] || [ "$rc" -eq 77 ] || [ "$3" -gt 0 ] || count 0 1 0 "$label"
	else
		fatal_stage "$label"
	fi
	keep_log "$out" "$label"
	rm -f "$out"
}

note "build"
if build build; then
	note "unit tests"
	unit_tests build "unit tests"
	case $(stat -fc %T /sys/fs/cgroup) in
	cgroup2fs) mode=v2 ;;
	*) [ -d /sys/fs/cgroup/unified ] && mode=hybrid || mode=v1 ;;
	esac
	note "integration tests (this host: cgroup $mode)"
	integration "$top/build" "integration tests"
	note "QEMU guest: the tree seen from under /tmp and /root"
	script_stage "guest paths" tests/vm/test-paths.sh
	note "integration tests (QEMU guest: cgroup v2)"
	# Under emulation the guest is several times slower: it runs the suites
	# whose behaviour depends on the cgroup version and the kernel.
	integration "$top/build" "integration tests (cgroup v2 guest)" tests/vm/run.sh --timeout 2400 -- \
		env SBX_TEST_FILTER="test_resources.* test_sandbox.* test_restart.* test_security.* test_exec.* test_process.* test_session.* test_scale.KernelLimitTest.*"
else
	fatal_stage "build"
fi

note "ASan/UBSan build"
if build build-asan --enable-sanitizers; then
	note "unit tests under ASan/UBSan"
	ASAN_OPTIONS=detect_leaks=1 unit_tests build-asan "unit tests (asan)"
	# The real daemon built with the sanitizers, through the suites that
	# drive its protocol, command, file and network code hardest. A memory
	# error aborts the daemon (so tests fail) and leaves a report here.
	# Leak checking stays with the unit tests: the daemon exits without
	# freeing what the process exit frees anyway.
	note "integration tests under ASan/UBSan (daemon built with the sanitizers)"
	asanlog=$(mktemp -d)
	integration "$top/build-asan" "integration tests (asan)" env \
		ASAN_OPTIONS="detect_leaks=0:log_path=$asanlog/asan" \
		UBSAN_OPTIONS="print_stacktrace=1:log_path=$asanlog/ubsan" \
		SBX_TEST_FILTER="test_protocol.* test_concurrency.* test_events.* test_process.* test_session.* test_fs.* test_net.* test_hostnet.* test_preview.* test_restart.* test_leaks.* test_scale.* test_images_oci.LayeredImageTest.* test_images_oci.PullTest.* test_archive.* test_snapshots.*"
	if compgen -G "$asanlog/*" >/dev/null; then
		echo "sanitizer reports:"
		head -n 80 "$asanlog"/*
		count 0 1 0 "sanitizer reports"
	fi
	rm -rf "$asanlog"
else
	fatal_stage "sanitizer build"
fi

note "fuzzing (libFuzzer, 30 s per target)"
if ! command -v clang >/dev/null || ! dpkg-query -W libclang-rt-14-dev >/dev/null 2>&1; then
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang libclang-rt-14-dev \
		>/dev/null 2>&1 || true
fi
script_stage fuzzing tests/fuzz/run.sh 30

note "packages (DEB and RPM: build, lint, install, upgrade, remove, purge)"
script_stage packages tests/package/run.sh "$top/build"

note "distcheck"
if (cd build && make -j"$jobs" distcheck >distcheck.log 2>&1); then
	echo "distcheck: passed"
	count 1 0 0 distcheck
else
	tail -40 build/distcheck.log
	fatal_stage "distcheck"
fi

# The end of what each failed stage printed (its failures' details come
# last), all within the last few hundred lines of the run.
kept=$(ls "$stagelogs" | wc -l)
if [ "$kept" -gt 0 ]; then
	note "the end of what the failed stages printed"
	for f in "$stagelogs"/*; do
		head -1 "$f"
		tail -n +2 "$f" | tail -n $((150 / kept))
	done
fi
echo
[ ${#failures[@]} -eq 0 ] || echo "failed stages: ${failures[*]}"
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
