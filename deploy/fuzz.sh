#!/bin/bash
# fuzz.sh -- build the libFuzzer harnesses (tests/fuzz, docs/fuzzing.md) with clang into
# build-fuzz/ (or $GW_FUZZ_BUILD_DIR) and run each for a bounded time.
#
# Usage: deploy/fuzz.sh [-t SECONDS] [--seeds] [--no-build] [HARNESS...]
#   -t SECONDS  time per harness (default $GW_FUZZ_SECONDS, else 20); 0 = only replay the
#               seed corpus and the kept regressions (a few seconds in all)
#   --seeds     regenerate the generated seeds (tests/fuzz/*/seed-*) first
#   HARNESS     control migrate cluster config metrics process_decode (default: all),
#               with or without the fuzz_ prefix
# A long run of one harness: deploy/fuzz.sh -t 3600 config
#
# Each harness reads its committed seeds (tests/fuzz/NAME/, never written) and keeps what it
# finds in build-fuzz/corpus/NAME/ (grows from run to run). A crash or a broken invariant
# stops that harness; the input is saved as build-fuzz/crashes/NAME-crash-* and printed, the
# other harnesses still run, and the exit status is 1. Reproduce one with
#   build-fuzz/tests/fuzz/fuzz_NAME build-fuzz/crashes/NAME-crash-...
# then fix the decoder and copy the input to tests/fuzz/NAME/ as a regression seed.
# Installs clang and libFuzzer when missing (deploy/install-deps.sh --fuzz, needs root).
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
build="${GW_FUZZ_BUILD_DIR:-$src/build-fuzz}"
all=(control migrate cluster config metrics process_decode)
secs="${GW_FUZZ_SECONDS:-20}"
seeds=0
do_build=1
names=()
while [ $# -gt 0 ]; do
	case "$1" in
	-t)
		secs="$2"
		shift 2
		;;
	--seeds)
		seeds=1
		shift
		;;
	--no-build)
		do_build=0
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		names+=("${1#fuzz_}")
		shift
		;;
	esac
done
[ ${#names[@]} -gt 0 ] || names=("${all[@]}")
for n in "${names[@]}"; do
	[[ " ${all[*]} " == *" $n "* ]] || {
		echo "fuzz.sh: no harness '$n' (have: ${all[*]})" >&2
		exit 2
	}
done
[[ "$secs" =~ ^[0-9]+$ ]] || {
	echo "fuzz.sh: -t wants whole seconds, not '$secs'" >&2
	exit 2
}

cc="$(command -v clang-14 || command -v clang || true)"
if [ -z "$cc" ] || ! ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	"$src/deploy/install-deps.sh" --fuzz
	cc="$(command -v clang-14 || command -v clang)"
fi

t0=$(date +%s)
if [ "$do_build" = 1 ]; then
	CC="$cc" cmake -S "$src" -B "$build" -DGW_FUZZ=ON -DGW_TESTS=OFF \
		-DCMAKE_BUILD_TYPE=RelWithDebInfo >"$build.cmake.log" 2>&1 || {
		cat "$build.cmake.log" >&2
		exit 1
	}
	rm -f "$build.cmake.log"
	cmake --build "$build" -j"$(nproc)" --target fuzz_all >/dev/null ||
		cmake --build "$build" -j1 --target fuzz_all
fi
echo "fuzz.sh: built in $(($(date +%s) - t0)) s ($cc, $build)"
bin="$build/tests/fuzz"
if [ "$seeds" = 1 ]; then
	"$bin/fuzz_seeds" "$src/tests/fuzz"
	echo "fuzz.sh: seeds regenerated in tests/fuzz/*/seed-*"
fi

mkdir -p "$build/crashes"
rc=0
summary=()
for n in "${names[@]}"; do
	corpus="$build/corpus/$n"
	mkdir -p "$corpus"
	log="$build/fuzz_$n.log"
	args=(-artifact_prefix="$build/crashes/$n-" -print_final_stats=1 -timeout=10
		-rss_limit_mb=2048 -max_len=8192)
	if [ "$secs" -eq 0 ]; then
		args+=(-runs=0) # replay the corpus only
	else
		args+=(-max_total_time="$secs")
	fi
	before=$(ls "$build/crashes" | wc -l)
	r=0
	nice "$bin/fuzz_$n" "${args[@]}" "$corpus" "$src/tests/fuzz/$n" >"$log" 2>&1 || r=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
	cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
	if [ "$r" -ne 0 ]; then
		rc=1
		crash=$(ls -t "$build/crashes" | head -1)
		[ "$(ls "$build/crashes" | wc -l)" -gt "$before" ] || crash=""
		echo "fuzz.sh: fuzz_$n FAILED (exit $r): input ${crash:+$build/crashes/$crash}" >&2
		grep -E 'invariant broken|ERROR:|runtime error|SUMMARY' "$log" | head -5 >&2 || true
		echo "  full log: $log" >&2
		summary+=("$(printf '%-15s FAILED  %s' "$n" "${crash:+$build/crashes/$crash}")")
	else
		summary+=("$(printf '%-15s ok      %10s execs %8s exec/s  cov %s' "$n" "${execs:-?}" \
			"${rate:-?}" "${cov:-?}")")
	fi
done
echo "fuzz.sh: ${secs} s per harness, $(($(date +%s) - t0)) s in all"
printf '  %s\n' "${summary[@]}"
exit "$rc"
