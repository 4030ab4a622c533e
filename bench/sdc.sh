#!/usr/bin/env bash
# bench/sdc.sh — what the cell-key method costs the figures of the demo state, and what an
# attacker gains (docs/disclosure.md): `kqe sdc evaluate` for the state and both regions of
# every period the demo holds, then the attack harness (tests/sdc/attacks.c) on generated
# records. Prints only figures about the tables, never a cell.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
# shellcheck source=lib.sh
source bench/lib.sh
build/bin/kqe rollups rebuild >/dev/null
build/bin/kqe release make >/dev/null
for period in 2023-2028 2024 2025; do
	build/bin/kqe sdc evaluate --period "$period"
	for region in LVR LWL; do
		build/bin/kqe sdc evaluate --period "$period" --region "$region"
	done
	echo
done
cmake --build build --target sdc_attacks >/dev/null
build/tests/sdc_attacks
