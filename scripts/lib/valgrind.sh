# shellcheck shell=bash
# scripts/lib/valgrind.sh — ./scripts/test --valgrind: builds kqe without sanitizers (Debug,
# -O1 -g) into build/valgrind and runs the integration tests with every kqe-api and
# kqe-aggregator the harness starts inside valgrind memcheck (KQE_TEST_WRAPPER, harness.py
# Process). A process stopped with SIGTERM must end with no memcheck error and no definite or
# indirect leak; one killed on purpose must have reported no error before. Each process's
# report is <its log>.<n>.wrapper.log beside its log (build/valgrind/test-logs after a failed
# run). Suppressions: tests/valgrind/kqe.supp (third-party libraries only, each with why).
#
# Every integration module runs but typed_client (node drives the same routes, and its client
# is compiled by the TypeScript tools only the plain run installs); the contract module runs
# last as in the plain run and checks that every operation of the API got a success, so every
# route was exercised under memcheck. docs/testing.md "Valgrind" says which tests are skipped.
# Environment: KQE_VALGRIND_FILTER (a ctest -R regex over integration.<module>: only those,
#              without contract), KQE_TEST_TIMEOUT_SCALE (default 10), KQE_TEST_JOBS (2).
# Sourced by scripts/test (after scripts/lib/stack.sh), which calls valgrind_main.

valgrind_main() {
	local started=$SECONDS select rc=0 processes
	stack_install_deps valgrind python3-jsonschema # jsonschema: test_contract.py
	cmake -S . -B build/valgrind -DCMAKE_BUILD_TYPE=Debug -DKQE_SANITIZE=OFF \
		-DCMAKE_C_FLAGS_DEBUG="-O1 -g" >/dev/null
	cmake --build build/valgrind -j"$(nproc)" >/dev/null

	if [ -n "${KQE_VALGRIND_FILTER:-}" ]; then
		select=(-R "$KQE_VALGRIND_FILTER" -E 'integration\.(typed_client|contract)$')
	else
		# -FS: the contract test must not pull typed_client back in as a fixture setup.
		select=(-E 'integration\.typed_client$' -FS kqe_contract_recording)
	fi
	export KQE_TEST_WRAPPER="valgrind --tool=memcheck --leak-check=full \
--show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
--track-origins=yes --error-exitcode=99 --num-callers=30 \
--suppressions=$root/tests/valgrind/kqe.supp --log-file={log}"
	export KQE_TEST_TIMEOUT_SCALE=${KQE_TEST_TIMEOUT_SCALE:-10}
	stack_promtool # test_deploy.py runs here too
	test_ctest build/valgrind -L integration "${select[@]}" -j"${KQE_TEST_JOBS:-2}" || rc=$?
	processes=$(find "$work/logs" -name '*.wrapper.log' | wc -l)
	echo "valgrind: $processes processes ran under memcheck; $((SECONDS - started)) s in all"
	return "$rc"
}
