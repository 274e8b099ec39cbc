#!/usr/bin/env bash
# The whole test suite: installs the test servers when missing, type-checks, lints, then runs
# unit, integration and browser tests against real servers started by the fixtures.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-test-servers.sh
npx tsc -p .
npx tsc -p dashboards/web
npx eslint .
npx vitest run
