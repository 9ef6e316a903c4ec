#!/bin/bash
# Build the libFuzzer targets with clang and run each for a while.
#   tests/fuzz/run.sh [SECONDS_PER_TARGET]
# Exit 77 (skip) without clang's libFuzzer. Corpora grow in
# tests/fuzz/corpus/<target> (not kept in git); crashes land in
# tests/fuzz/crash-* and fail the run.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
secs=${1:-30}
cc=$(command -v clang || command -v clang-14 || true)
[ -n "$cc" ] || { echo "fuzz: SKIP: no clang (apt-get install clang libclang-rt-14-dev)"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long s) { (void)d; (void)s; return 0; }' > "$out/probe.c"
"$cc" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" 2>/dev/null ||
	{ echo "fuzz: SKIP: clang has no libFuzzer (apt-get install libclang-rt-14-dev)"; exit 77; }
common="$top/src/common"
cat > "$out/config.h" <<'H'
#define _GNU_SOURCE 1
#define PACKAGE_VERSION "fuzz"
H
flags="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I$out -I$common -I$top/src/lib $(pkg-config --cflags yajl nettle libarchive)"
libs="$(pkg-config --libs yajl nettle libarchive)"
lib="$top/src/lib"
srcs="$common/util.c $common/error.c $common/json.c $common/framing.c $common/log.c $common/imageref.c $lib/httphead.c
$lib/digest.c $lib/layers.c $lib/oci.c $lib/fsops.c"
passed=0 failed=0
for t in fuzz_framing fuzz_request fuzz_text fuzz_httphead fuzz_cut fuzz_image; do
	if ! "$cc" $flags "$here/$t.c" $srcs $libs -o "$out/$t" 2>"$out/$t.log"; then
		cat "$out/$t.log"
		echo "fuzz: $t: build failed"
		failed=$((failed + 1))
		continue
	fi
	mkdir -p "$here/corpus/$t"
	if [ "$t" = fuzz_image ] && [ -z "$(ls -A "$here/corpus/$t")" ]; then
		# Seeds: the first byte picks the parser (see fuzz_image.c); 5 is
		# the layer unpacker, given a small tar with a whiteout, plain and
		# gzip-compressed.
		seed=$(mktemp -d)
		mkdir -p "$seed/t/d" && echo x > "$seed/t/d/f" && : > "$seed/t/.wh.gone" && ln -s /etc "$seed/t/l"
		{ printf '\005'; tar -C "$seed/t" -cf - .; } > "$here/corpus/$t/tar"
		{ printf '\005'; tar -C "$seed/t" -czf - .; } > "$here/corpus/$t/tgz"
		printf '\000{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%064d","size":1},"layers":[]}' 0 \
			> "$here/corpus/$t/manifest"
		printf '\002{"os":"linux","config":{"Env":["A=b"],"ExposedPorts":{"80/tcp":{}}},"rootfs":{"type":"layers","diff_ids":[]}}' \
			> "$here/corpus/$t/config"
		printf '\004registry.example.com:5000/team/img:tag' > "$here/corpus/$t/ref"
		rm -rf "$seed"
	fi
	if (cd "$out" && "./$t" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=1024 \
		-artifact_prefix="$here/crash-$t-" "$here/corpus/$t" >"$out/$t.run" 2>&1); then
		echo "fuzz: $t: $(grep -oE 'Done [0-9]+ runs' "$out/$t.run" | tail -1), no crash"
		passed=$((passed + 1))
	else
		tail -30 "$out/$t.run"
		echo "fuzz: $t: CRASH (input saved as tests/fuzz/crash-$t-*)"
		failed=$((failed + 1))
	fi
done
echo "$passed passed, $failed failed, 0 skipped"
[ "$failed" -eq 0 ]
