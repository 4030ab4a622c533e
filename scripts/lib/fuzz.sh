# shellcheck shell=bash
# scripts/lib/fuzz.sh — ./scripts/test --fuzz: builds the libFuzzer targets (tests/fuzz) with
# clang-14 into build/fuzz and runs each for KQE_FUZZ_SECONDS seconds (default 60), two at a
# time. The seeds in tests/fuzz/corpus/<name>/ are copied into build/fuzz/runs/<name>/corpus,
# so a run never writes into the checkout; max_len comes from tests/fuzz/fuzz_<name>.options.
# Any crash, leak, timeout or sanitizer report fails the run and names the reproducer.
# Environment: KQE_FUZZ_SECONDS, KQE_FUZZ_FILTER (a regex over target names, default all).
# Sourced by scripts/test (after scripts/lib/stack.sh), which calls fuzz_main.

# fuzz_one NAME SECONDS — one target; its log, artifacts and rc go to build/fuzz/runs/NAME/.
fuzz_one() {
	local name=$1 seconds=$2 dir=build/fuzz/runs/$1 max_len
	max_len=$(sed -n 's/^max_len *= *\([0-9]*\)$/\1/p' "tests/fuzz/fuzz_$name.options" 2>/dev/null)
	rm -rf "$dir"
	mkdir -p "$dir/corpus"
	cp -R "tests/fuzz/corpus/$name/." "$dir/corpus/" 2>/dev/null || true
	local rc=0
	build/fuzz/fuzz/fuzz_"$name" -max_total_time="$seconds" -max_len="${max_len:-4096}" \
		-timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$dir/" "$dir/corpus" >"$dir/log" 2>&1 || rc=$?
	echo "$rc" >"$dir/rc"
}

fuzz_main() {
	local seconds=${KQE_FUZZ_SECONDS:-60} filter=${KQE_FUZZ_FILTER:-.} started=$SECONDS
	stack_install_deps clang-14 libclang-rt-14-dev
	CC=clang-14 cmake -S . -B build/fuzz -DCMAKE_BUILD_TYPE=Debug -DKQE_TESTS=OFF -DKQE_FUZZ=ON \
		>/dev/null
	cmake --build build/fuzz -j"$(nproc)" --target fuzzers >/dev/null

	local names=() src name
	for src in tests/fuzz/fuzz_*.c; do
		name=$(basename "$src" .c)
		name=${name#fuzz_}
		[[ $name =~ $filter ]] && names+=("$name")
	done
	echo "fuzz: ${#names[@]} targets, ${seconds} s each, two at a time" >&2
	# The sanitizers stop at the first report; libFuzzer then writes the input as crash-*/leak-*.
	export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
	export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
	local running=0
	for name in "${names[@]}"; do
		if [ "$running" -ge 2 ]; then
			wait -n || true
			running=$((running - 1))
		fi
		fuzz_one "$name" "$seconds" &
		running=$((running + 1))
	done
	wait || true

	local passed=0 failed=0 dir artifact
	for name in "${names[@]}"; do
		dir=build/fuzz/runs/$name
		artifact=$(find "$dir" -maxdepth 1 -type f \( -name 'crash-*' -o -name 'leak-*' \
			-o -name 'timeout-*' -o -name 'oom-*' -o -name 'slow-unit-*' \) | head -n 1)
		if [ "$(cat "$dir/rc" 2>/dev/null)" = 0 ] && [ -z "$artifact" ] &&
			! grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' "$dir/log"; then
			passed=$((passed + 1))
			echo "fuzz: $name ok ($(grep -o 'stat::number_of_executed_units: [0-9]*' "$dir/log" |
				grep -o '[0-9]*$') runs)" >&2
			continue
		fi
		failed=$((failed + 1))
		echo "fuzz: $name FAILED (rc $(cat "$dir/rc" 2>/dev/null)); the end of $root/$dir/log:" >&2
		grep -vE '^#[0-9]+\s+(NEW|REDUCE|pulse|INITED|READ)' "$dir/log" | tail -n 40 >&2
		if [ -n "$artifact" ]; then
			echo "fuzz: reproducer: $root/$artifact" >&2
			echo "fuzz: reproduce with: build/fuzz/fuzz/fuzz_$name $artifact" >&2
		fi
	done
	echo "fuzz: $((SECONDS - started)) s"
	echo "fuzz: $passed passed, $failed failed"
	[ "$failed" -eq 0 ]
}
