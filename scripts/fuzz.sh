#!/usr/bin/env bash
# `npm run fuzz`: the property tests of test/unit/fuzz (format parser, plan building over fixture
# tracefs trees, sample decoder, every /proc parser) with FC_RUNS runs per property (default 2000,
# which makes more than 10^5 cases in all; `npm test` runs them with ~500). Prints the cases run
# per property and in total, and the failures. Extra arguments go to vitest.
#
#   npm run fuzz                 # ~130k cases
#   FC_RUNS=20000 npm run fuzz   # a longer soak of the parsers
set -uo pipefail
cd "$(dirname "$0")/.."
export FC_RUNS=${FC_RUNS:-2000}
export FUZZ_REPORT
FUZZ_REPORT=$(mktemp "${TMPDIR:-/tmp}/rxtrace-fuzz.XXXXXX")
trap 'rm -f "$FUZZ_REPORT"' EXIT

start=$(date +%s)
npx --no-install vitest run --project unit test/unit/fuzz --reporter=dot "$@" 2>&1 | tee "$FUZZ_REPORT.log"
status=${PIPESTATUS[0]}
secs=$(( $(date +%s) - start ))

echo
echo "fuzz: FC_RUNS=$FC_RUNS per property"
sort "$FUZZ_REPORT" | awk -F'\t' '{ printf "  %8d  %s\n", $2, $1; total += $2; n++ } END { printf "fuzz: %d cases over %d properties in '"$secs"' s\n", total, n }'
failed=$(sed 's/\x1b\[[0-9;]*m//g' "$FUZZ_REPORT.log" | grep -E '^ +Tests ' | grep -Eo '[0-9]+ failed' | grep -Eo '[0-9]+' || true)
echo "fuzz: ${failed:-0} failing tests (the only allowed failure is a typed parse error; a failure is a bug, with its counterexample above)"
rm -f "$FUZZ_REPORT.log"
exit "$status"
