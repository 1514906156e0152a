#!/usr/bin/env bash
# Three `ordo serve --cluster` instances on one PostgreSQL queue, end to end
# (ctest label e2e), on a private server (tests/support/pg_fixture.sh) and
# the embedded ledger, driven by `ordo run --instances 3` (src/cli/
# cluster_run.c): twenty services, the signed workload posted to the
# instances in turn, and for the whole run
#
#   1. kill -9 of a random instance every TTL + 3 s, restarted a TTL + 1 s
#      later: its services are taken over by the others when their leases
#      expire;
#   2. SIGSTOP of a random instance instead, SIGCONT a TTL + 1 s later: a
#      stale owner comes back after another has taken its services over.
#
# Each run must end with every batch final, 0 acknowledged batches lost,
# 0 committed twice (the ledger's blocks), `ordo verify` equal (the ledger
# is the serial replay of the workload), at least two kills (stops), and
# the longest stall of any service at most TTL + 2 s. After the SIGSTOP
# run the stopped instances' logs must say that they lost their leases.
#
# The lease TTL is 2 s here (5 s by default) so that a run of a few
# thousand batches sees several failovers. Exit 77 (skipped) when the
# server programs are not installed.
set -u
ordo="$1"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/support/pg_fixture.sh"
tmp=$(mktemp -d /tmp/ordo-cluster-e2e-XXXXXX)
fail=0
cleanup() {
  pg_fixture_stop immediate 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

pg_fixture_start_or_exit "$tmp/pg"

ttl_ms=2000
batches=${ORDO_CLUSTER_E2E_BATCHES:-8000}

# check NAME FILE: the run's JSON against the promises above.
check() {
  /usr/bin/python3 - "$1" "$2" "$ttl_ms" << 'PY' || fail=1
import json, sys
name, path, ttl = sys.argv[1], sys.argv[2], int(sys.argv[3]) / 1000
d = json.loads(open(path).read().strip().splitlines()[-1])
problems = []
if not d["finished"]: problems.append("not every batch became final")
if d["lost"] != 0: problems.append("%d acknowledged batches lost" % d["lost"])
if d["committed_twice"] != 0: problems.append("%d committed twice" % d["committed_twice"])
if not d["verify_equal"]: problems.append("verify: %d differences" % d["differences"])
if d["kills"] < 2: problems.append("only %d kills" % d["kills"])
if d["max_stall_s"] > ttl + 2:
    problems.append("service %s stalled %.2f s > TTL + 2 s" % (d["max_stall_service"], d["max_stall_s"]))
if d["committed"] + d["invalid"] != d["batches"]: problems.append("final %d of %d" % (d["committed"] + d["invalid"], d["batches"]))
print(("FAIL " if problems else "ok   ") + "%s: %d batches, %d kills, %d lost, %d twice, verify %s, longest stall %.2f s (%s), %.0f batches/s%s" %
      (name, d["batches"], d["kills"], d["lost"], d["committed_twice"], "equal" if d["verify_equal"] else "DIFFERENT",
       d["max_stall_s"], d["max_stall_service"], d["batches_per_s"], ": " + "; ".join(problems) if problems else ""))
sys.exit(1 if problems else 0)
PY
}

# 1. kill -9
mkdir -p "$tmp/kill"
timeout 900 "$ordo" run --instances 3 --postgres "$PG_URL" --services 20 \
  --batches "$batches" --conflict 0.3 --ttl-ms "$ttl_ms" --json \
  --keep "$tmp/kill" > "$tmp/kill.json" 2> "$tmp/kill.err"
rc=$?
[ "$rc" = 0 ] || { echo "FAIL kill run: exit $rc"; tail -n 20 "$tmp/kill.err"; fail=1; }
check "kill -9 every TTL + 3 s" "$tmp/kill.json" || tail -n 5 "$tmp"/kill/serve-*.log

# 2. SIGSTOP / SIGCONT
mkdir -p "$tmp/stop"
timeout 900 "$ordo" run --instances 3 --postgres "$PG_URL" --services 20 \
  --batches "$batches" --conflict 0.3 --ttl-ms "$ttl_ms" --sigstop --json \
  --keep "$tmp/stop" > "$tmp/stop.json" 2> "$tmp/stop.err"
rc=$?
[ "$rc" = 0 ] || { echo "FAIL stop run: exit $rc"; tail -n 20 "$tmp/stop.err"; fail=1; }
check "SIGSTOP past the TTL, then SIGCONT" "$tmp/stop.json" || tail -n 5 "$tmp"/stop/serve-*.log
# The stale owner found out, and stopped those services, once continued.
if grep -h "lost the lease\|stopped every service" "$tmp"/stop/serve-*.log > "$tmp/lost"; then
  echo "ok   a continued owner stopped the services it had lost ($(wc -l < "$tmp/lost") times)"
else
  echo "FAIL no instance said it lost a lease after SIGCONT"; fail=1
fi

[ "$fail" = 0 ] && echo "cluster end to end: all passed"
exit $fail
