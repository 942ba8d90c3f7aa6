#!/usr/bin/env bash
# Runs each fuzz target (package:Target) for FUZZ_TIME.
#
# Go 1.26's fuzz coordinator can fail a target with a bare "context deadline
# exceeded" when -fuzztime ends while a worker is mid-input (go.dev/issue/75804,
# fixed in Go 1.27): nothing was found and no failing input was written. Such
# a run is repeated once; a run that writes a failing input, or fails in any
# other way, fails at once.
set -uo pipefail

fuzz_time=${FUZZ_TIME:-20s}

run_target() { # package target log
  go test -short -run '^$' -fuzz "^$2\$" -fuzztime "$fuzz_time" "$1" 2>&1 | tee "$3"
  return "${PIPESTATUS[0]}"
}

# coordinator_race reports whether the log shows only the coordinator's
# deadline race: the bare message and no failing input written.
coordinator_race() { # log
  grep -q '^    context deadline exceeded$' "$1" && ! grep -q 'Failing input written to' "$1"
}

log=$(mktemp)
trap 'rm -f "$log"' EXIT
for t in "$@"; do
  pkg=${t%%:*} target=${t#*:}
  run_target "$pkg" "$target" "$log" && continue
  if coordinator_race "$log"; then
    echo "fuzz: $target ended on Go's fuzz coordinator deadline race (go.dev/issue/75804), no input found: running it once more"
    run_target "$pkg" "$target" "$log" && continue
  fi
  exit 1
done
