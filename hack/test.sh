#!/usr/bin/env bash
# Runs every package's tests (make test). The e2e package runs in three
# processes at once, each on its own local control plane, so that the tests
# that disrupt a whole control plane (restarted etcd and API server, killed
# controllers, failed nodes: minutes of waiting on recovery) and the ones
# that start control planes or hosts of their own do not hold up the others;
# within a process the tests share its control plane, as before. The shards
# and the other packages run side by side.
set -uo pipefail
cd "$(dirname "$0")/.."

read -r -a flags <<<"${GO_TEST_FLAGS:--count=1}"
flags+=(-timeout "${GO_TEST_TIMEOUT:-60m}")
e2e=github.com/cafe-io/cafe/test/e2e
# The tests that disrupt their control plane for long; the `cafe dev up`
# tests (each starts control planes of its own) and the classic hosts'
# tests. Measured alone with -v: about 10 and 8 minutes; the rest, 12.
disruptive='^(TestChaos|TestNodeLifecycle)'
ownplanes='^(TestDevUp|TestClassic)'

mapfile -t packages < <(go list ./... | grep -vx "$e2e")
go build ./... || exit 1

pids=()
go test "${flags[@]}" "${packages[@]}" &
pids+=($!)
echo "e2e shard 1 of 3: tests matching $disruptive"
go test "${flags[@]}" -run "$disruptive" "$e2e" &
pids+=($!)
echo "e2e shard 2 of 3: tests matching $ownplanes"
go test "${flags[@]}" -run "$ownplanes" "$e2e" &
pids+=($!)
echo "e2e shard 3 of 3: the other tests"
# Its tests marked runsBesideOthers wait mostly on the clock: up to four
# at once, after the sequential ones.
go test "${flags[@]}" -parallel 4 -skip "$disruptive|$ownplanes" "$e2e" &
pids+=($!)

rc=0
for pid in "${pids[@]}"; do
  wait "$pid" || rc=1
done
exit "$rc"
