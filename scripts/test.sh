#!/usr/bin/env bash
# `npm test`: build, then unit tests (parallel), then live tests (serial: they share one kernel).
# Live tests need root; with CI=true they never skip (see test/helpers/live.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-tools.sh
[ -f build/Release/rxtrace.node ] && [ -f build/Release/rxflood ] || npx node-gyp rebuild >/dev/null
npm run build --silent
npx vitest run --project unit "$@"
npx vitest run --project live "$@"
