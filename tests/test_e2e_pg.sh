#!/usr/bin/env bash
# End to end on PostgreSQL (ctest label e2e): test_e2e.sh's crash cases with
# the queue in a database (`--data postgresql://…/DB`, whose store "queue"
# holds the journal) instead of a directory, on a private server
# (tests/support/pg_fixture.sh), a fresh database per case.
#
#   1. `ordo submit` killed with SIGKILL mid-run, then run again on the
#      same database: it finishes without duplicates, verify passes.
#   2. `ordo serve` killed with SIGKILL while ten-item requests come in: no
#      request is ever partly journaled, re-sending one is safe.
#
# After a SIGKILL the server drops the journal's advisory lock once it has
# seen the dead process's connection close: each case waits for that (the
# dead pid's sessions gone from pg_stat_activity) before it starts ordo
# again, as an operator's restart a moment later would find it.
#
# Exit 77 (skipped) when the server programs are not installed.
set -u
ordo="$1"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/support/pg_fixture.sh"
tmp=$(mktemp -d /tmp/ordo-e2e-pg-XXXXXX)
fail=0
node_pid=
dbs=()
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null
  wait 2>/dev/null
  for db in "${dbs[@]}"; do # an external server keeps no litter
    psql -c "DROP DATABASE IF EXISTS $db" > /dev/null 2>&1
  done
  pg_fixture_stop immediate 2> /dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

pg_fixture_start_or_exit "$tmp/pg"
psql() { pg_psql "$@"; }

# new_db NAME: a fresh database; its URL in db_url.
new_db() {
  local name=ordo_e2e_$$_$1 base=${PG_URL%%\?*} query=
  case $PG_URL in *\?*) query="?${PG_URL#*\?}" ;; esac
  psql -c "CREATE DATABASE $name" || { echo "FAIL CREATE DATABASE $name"; fail=1; return 1; }
  dbs+=("$name")
  db_url="${base%/*}/$name$query"
}

# gone PID: wait (30 s at most) until the server has no session of the
# dead ordo process PID left, and with it none of its locks.
gone() {
  local n
  for _ in $(seq 1 300); do
    n=$(psql -c "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'ordo pid $1'")
    [ "$n" = 0 ] && return 0
    sleep 0.1
  done
  echo "FAIL the server still has sessions of the killed ordo pid $1"; fail=1
  return 1
}

# start_node DATA [PORT] [extra flags...]: sets node_pid and url (as
# test_e2e.sh; the ledger node keeps its own data in files).
start_node() {
  local data=$1 port=${2:-0}
  shift 2
  : > "$tmp/node.out"
  "$ordo" ledger --port "$port" --block-ms 50 --seed 7 --data "$data" "$@" \
    > "$tmp/node.out" 2> "$tmp/node.err" &
  node_pid=$!
  for _ in $(seq 1 100); do
    url=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$tmp/node.out" | head -n 1)
    [ -n "$url" ] && return 0
    sleep 0.1
  done
  echo "FAIL node did not start"; cat "$tmp/node.err"; fail=1
  return 1
}

stop_node() {
  kill -TERM "$node_pid" 2>/dev/null
  wait "$node_pid" 2>/dev/null
  node_pid=
}

expect() { # expect NAME WANT_RC CMD...
  local name=$1 want=$2; shift 2
  timeout 300 "$@" > "$tmp/out" 2> "$tmp/err"
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, want $want"; tail -n 20 "$tmp/out" "$tmp/err"; fail=1
  else
    echo "ok   $name: $(tail -n 1 "$tmp/out")"
  fi
}

"$ordo" workload --services 20 --batches 600 --conflict 0.3 --seed 12 \
  --invalid 0.05 --deps 0.1 > "$tmp/w2.jsonl"

# 1. kill -9 of ordo submit mid-run, then the same command again.
new_db kill && start_node "$tmp/node-kill" 0 --block-ms 250 && {
  "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" --strategy serial \
    --data "$db_url" --poll-ms 10 > /dev/null 2> "$tmp/kill.err" &
  sub=$!
  # Mid-run: once the queue holds journal records (a poll with a deadline,
  # not a guess at how long the start takes).
  for _ in $(seq 1 300); do
    n=$(psql -d "$db_url" -c "SELECT count(*) FROM ordo_item i JOIN ordo_store s ON s.id = i.store WHERE s.name = 'queue'" 2>/dev/null)
    [ "${n:-0}" -gt 0 ] && break
    sleep 0.1
  done
  kill -KILL "$sub" 2>/dev/null
  wait "$sub" 2>/dev/null; rc=$?
  if [ "$rc" != 137 ]; then
    echo "FAIL kill -9: the run was not killed mid-way (exit $rc)"; cat "$tmp/kill.err"; fail=1
  fi
  gone "$sub"
  [ "$(psql -d "$db_url" -c "SELECT count(*) FROM ordo_store WHERE name = 'queue'" 2>&1)" = 1 ] ||
    { echo "FAIL the queue is not the database's store 'queue'"; fail=1; }
  expect "submit again after kill -9 (PostgreSQL)" 0 "$ordo" submit "$tmp/w2.jsonl" \
    --ledger "$url" --data "$db_url" --poll-ms 10 --json
  /usr/bin/python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["batches"] == 600, d                      # no duplicates, none lost
assert d["committed"] + d["invalid"] == 600, d
assert d["invalid"] > 0, d
assert d["sent"] < 600, d                           # the killed run did some
print("ok   rerun summary: %d committed, %d invalid, %d sent by the rerun" %
      (d["committed"], d["invalid"], d["sent"]))
PY
  expect "verify after kill -9 (PostgreSQL)" 0 "$ordo" verify --workload "$tmp/w2.jsonl" \
    --ledger "$url" --data "$db_url"
  stop_node
}

# 2. Atomic enqueue: `ordo serve` (journal only) killed with SIGKILL at
#    random moments while a client posts ten-item requests; after each
#    restart no request is partly journaled, every acknowledged one is
#    whole, and re-sending any request is safe (200 "already enqueued", or
#    202 for what was lost).
new_db atomic && /usr/bin/python3 "$here/support/serve_kill.py" "$ordo" \
  "$db_url" 8 15 "$PG_URL" "${PG_BINDIR:+$PG_BINDIR/}psql" || fail=1

[ "$fail" = 0 ] && echo "e2e on PostgreSQL: all passed"
exit $fail
