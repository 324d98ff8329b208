#!/bin/bash
# test.sh -- the README's test command: install dependencies, build, run every test.
# Usage: sudo deploy/test.sh [ctest args...]   (e.g. -L unit, -R vm_lifecycle)
set -euo pipefail
src="$(cd "$(dirname "$0")/.." && pwd)"
"$src/deploy/install-deps.sh"
build="$("$src/deploy/build.sh" | tail -1)"
cd "$build"
exec ctest --output-on-failure --timeout 900 "$@"
