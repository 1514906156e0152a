#!/usr/bin/env bash
# End to end (ctest label e2e): the embedded ledger node on an ephemeral
# loopback port, `ordo submit` through the durable queuer, `ordo verify` as
# the oracle. Every run is bounded in time; nothing leaves 127.0.0.1.
#
#   1. 2,000 batches over 20 services, 30 % conflicting, parallel: all
#      final, verify passes. Serial: verify passes. Unconstrained: verify
#      FAILS (the oracle bites: the node applies each block in a seeded
#      random order).
#   2. The node restarted mid-run, its pending queue lost: the run still
#      finishes, nothing invalid resent, verify passes.
#   3. `ordo submit` killed with SIGKILL mid-run, then run again on the same
#      data directory: it finishes without duplicates, verify passes.
#   4. 20 % of requests answered 503 and every answer delayed: the run
#      completes and verifies.
#   5. `ordo run`, small.
#   6. A node that refuses chosen batches (400 code 30) and large bodies
#      (413): exactly those INVALID, the rest committed, verify passes.
#   7. A dead ledger (nothing listening; listening but silent) is reported
#      within 2 s and --timeout ends the run with exit 1.
#   8. A node with an allow-list of batch signers: a key not on it gets
#      every batch refused (INVALID); the operator's key file, once
#      allow-listed, commits them all.
#   9. `ordo serve` killed with SIGKILL while ten-item requests come in:
#      no request is ever partly journaled, re-sending one is safe.
#  10. Storage faults on ordo submit's journal, kill -9 and reruns: verify
#      passes.
#  11. kill -9 of ordo submit again and again with a journal checkpoint
#      every 40 records, so that kills land before, inside and after
#      checkpoints, their forgotten-id segments and prunes: the last run
#      finishes without duplicates and verify passes.
set -u
ordo="$1"
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/ordo-e2e-XXXXXX)
fail=0
node_pid=
cleanup() {
  [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

# start_node DATA [PORT] [extra flags...]: sets node_pid and url. Blocks
# every 50 ms unless the extra flags say otherwise (a later flag wins).
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

"$ordo" workload --services 20 --batches 2000 --conflict 0.3 --seed 11 > "$tmp/w.jsonl"
"$ordo" workload --services 20 --batches 600 --conflict 0.3 --seed 12 \
  --invalid 0.05 --deps 0.1 > "$tmp/w2.jsonl"

# 1. parallel, serial, unconstrained, each on a fresh node and data dir.
for s in parallel serial unconstrained; do
  start_node "$tmp/node-$s" 0 || break
  expect "submit $s" 0 "$ordo" submit "$tmp/w.jsonl" --ledger "$url" \
    --data "$tmp/q-$s" --strategy "$s" --poll-ms 10
  want=0; [ "$s" = unconstrained ] && want=1
  expect "verify $s" $want "$ordo" verify --workload "$tmp/w.jsonl" \
    --ledger "$url" --data "$tmp/q-$s"
  stop_node
done

# 2. The node restarts mid-run and forgets its pending queue. Serial and
#    250 ms blocks make the run take seconds, so the restart lands inside it.
start_node "$tmp/node-restart" 0 --block-ms 250 && {
  port=${url##*:}
  timeout 300 "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" --strategy serial \
    --data "$tmp/q-restart" --poll-ms 10 --json > "$tmp/sub.out" 2> "$tmp/sub.err" &
  sub=$!
  sleep 1.5
  if ! kill -0 "$sub" 2>/dev/null; then
    echo "FAIL node restart: the run ended before the restart"; fail=1
  fi
  stop_node
  sleep 0.3
  start_node "$tmp/node-restart" "$port" --block-ms 250
  wait "$sub"; rc=$?
  if [ "$rc" != 0 ]; then
    echo "FAIL submit across a node restart: exit $rc"; tail "$tmp/sub.err"; fail=1
  else
    echo "ok   submit across a node restart: $(tail -n 1 "$tmp/sub.out")"
  fi
  expect "verify after node restart" 0 "$ordo" verify --workload "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-restart"
  stop_node
}

# 3. kill -9 of ordo submit mid-run, then the same command again.
start_node "$tmp/node-kill" 0 --block-ms 250 && {
  # No `timeout` wrapper here: the kill must reach ordo itself.
  "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" --strategy serial \
    --data "$tmp/q-kill" --poll-ms 10 > /dev/null 2>&1 &
  sub=$!
  sleep 1.5
  kill -KILL "$sub" 2>/dev/null
  wait "$sub" 2>/dev/null; rc=$?
  if [ "$rc" != 137 ]; then
    echo "FAIL kill -9: the run was not killed mid-way (exit $rc)"; fail=1
  fi
  expect "submit again after kill -9" 0 "$ordo" submit "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-kill" --poll-ms 10 --json
  /usr/bin/python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["batches"] == 600, d                      # no duplicates, none lost
assert d["committed"] + d["invalid"] == 600, d
assert d["invalid"] > 0, d                          # the marked ones, and their cascade
print("ok   rerun summary: %d committed, %d invalid, %d sent again" %
      (d["committed"], d["invalid"], d["resubmitted"]))
PY
  expect "verify after kill -9" 0 "$ordo" verify --workload "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-kill"
  stop_node
}

# 4. 503s and slow answers.
start_node "$tmp/node-faults" 0 --fail-rate 0.2 --delay-ms 2 && {
  expect "submit with 20% 503s" 0 "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" \
    --data "$tmp/q-faults" --poll-ms 10
  expect "verify with 503s" 0 "$ordo" verify --workload "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-faults"
  stop_node
}

# 5. The main job in a small configuration: ledger and ordo serve as child
#    processes, serial then parallel, both verified.
expect "ordo run (small)" 0 "$ordo" run --services 10 --batches 300 --block-ms 50 --json
/usr/bin/python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert [r["strategy"] for r in d["runs"]] == ["serial", "parallel"], d
for r in d["runs"]:
    assert r["finished"] and r["verified"], r
    assert r["committed"] + r["invalid"] == 300, r
    assert r["differences"] == 0, r
assert d["runs"][0]["committed"] == d["runs"][1]["committed"], d
print("ok   ordo run json: %.1fx" % d["speedup"])
PY
expect "ordo run bad flag" 2 "$ordo" run --frobnicate

# 6. A permissioned ledger refuses batches (400 code 30 for the whole
#    list, not saying which) and bodies over its limit (413): the run
#    finishes, the refused batches are INVALID and never sent again, every
#    other batch commits, and the ledger equals the serial replay.
start_node "$tmp/node-refuse" 0 --refuse-rate 0.03 --max-body-bytes 65536 && {
  expect "submit with refusals" 0 "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" \
    --data "$tmp/q-refuse" --json
  /usr/bin/python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["committed"] + d["invalid"] == 600, d
assert d["refused"] > 0, d
assert d["invalid"] >= d["refused"], d
print("ok   refusals: %d refused, %d invalid in all, %d committed" %
      (d["refused"], d["invalid"], d["committed"]))
PY
  grep -q "refused a request: 4" "$tmp/err" \
    || { echo "FAIL refusals: not reported on stderr"; cat "$tmp/err"; fail=1; }
  expect "verify with refusals" 0 "$ordo" verify --workload "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-refuse"
  stop_node
}

# 7. A dead ledger is reported with its cause while the run goes on (the
#    stall report comes ~2 s after the first call; the give-up after the
#    4 s of --timeout), and --timeout ends the run with exit 1: a port
#    nothing listens on, then one that takes connections and never
#    answers. An order, not a time: on a loaded machine the start alone
#    may take a second.
dead_ledger() { # dead_ledger NAME URL WANT_TEXT
  local name=$1 u=$2 want=$3 t0 t1 seen=
  t0=$(date +%s.%N)
  timeout 60 "$ordo" submit "$tmp/w2.jsonl" --ledger "$u" --data "$tmp/q-$name" \
    --timeout 4 > "$tmp/dead.out" 2> "$tmp/dead.err" &
  local sub=$!
  while kill -0 "$sub" 2> /dev/null; do
    if grep -q "ledger unreachable since" "$tmp/dead.err" &&
       ! grep -q "unreachable for" "$tmp/dead.err"; then
      seen=$(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")
      break
    fi
    sleep 0.05
  done
  if [ -z "$seen" ] || ! grep -q "$want" "$tmp/dead.err"; then
    echo "FAIL $name: not reported (with '$want') before the run gave up"
    cat "$tmp/dead.err"; fail=1
  fi
  wait "$sub"; local rc=$?
  t1=$(date +%s.%N)
  if [ "$rc" != 1 ]; then
    echo "FAIL $name: exit $rc, want 1"; tail "$tmp/dead.err"; fail=1
  elif ! grep -q "unreachable for" "$tmp/dead.err"; then
    echo "FAIL $name: no closing message"; tail "$tmp/dead.err"; fail=1
  else
    echo "ok   $name: said after ${seen} s, gave up after $(awk "BEGIN{printf \"%.1f\", $t1 - $t0}") s"
  fi
}
dead_ledger "dead-port" "http://127.0.0.1:1" "connect"
/usr/bin/python3 -c '
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
end = time.time() + 30
s.settimeout(0.5)
while time.time() < end:
    try:
        c, _ = s.accept(); held.append(c)   # take it, never answer
    except OSError:
        pass
' > "$tmp/silent.port" &
silent=$!
for _ in $(seq 1 50); do [ -s "$tmp/silent.port" ] && break; sleep 0.1; done
dead_ledger "silent-port" "http://127.0.0.1:$(head -n 1 "$tmp/silent.port")" \
  "no answer from the ledger"
kill "$silent" 2>/dev/null

# 8. A permissioned network: the node takes batches only from the signers
#    on its allow-list. Signed with a key not on it, every batch is refused
#    (INVALID, the run still ends); signed with the operator's key file
#    (sawtooth keygen's format) once that key is allow-listed, all commit.
/usr/bin/python3 -c 'import secrets; print(secrets.token_hex(32))' > "$tmp/op.priv"
chmod 600 "$tmp/op.priv"
echo "02$(printf '1%.0s' $(seq 1 64))  # someone else" > "$tmp/allow-other"
"$ordo" workload --services 4 --batches 60 --seed 21 > "$tmp/w3.jsonl"
start_node "$tmp/node-perm1" 0 --allow-signers "$tmp/allow-other" && {
  expect "submit, signer not allow-listed" 0 "$ordo" submit "$tmp/w3.jsonl" \
    --ledger "$url" --data "$tmp/q-perm1" --key-file "$tmp/op.priv" --json
  /usr/bin/python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["committed"] == 0 and d["invalid"] == 60, d
assert d["refused"] == 60, d
print("ok   not allow-listed: %d refused, none committed" % d["refused"])
PY
  pub=$(sed -n 's/.*signing as \([0-9a-f]\{66\}\).*/\1/p' "$tmp/err" | head -n 1)
  [ -n "$pub" ] || { echo "FAIL no 'signing as' line"; cat "$tmp/err"; fail=1; }
  stop_node
}
echo "# the operator's key" > "$tmp/allow-op"
echo "$pub" >> "$tmp/allow-op"
start_node "$tmp/node-perm2" 0 --allow-signers "$tmp/allow-op" && {
  expect "submit, allow-listed key file" 0 "$ordo" submit "$tmp/w3.jsonl" \
    --ledger "$url" --data "$tmp/q-perm2" --key-file "$tmp/op.priv" --json
  /usr/bin/python3 - "$tmp/out" <<'PY' || fail=1
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["committed"] == 60 and d["refused"] == 0, d
print("ok   allow-listed: %d committed" % d["committed"])
PY
  expect "verify, allow-listed" 0 "$ordo" verify --workload "$tmp/w3.jsonl" \
    --ledger "$url" --data "$tmp/q-perm2"
  stop_node
}

# 9. Atomic enqueue: `ordo serve` (journal only) killed with SIGKILL at
#    random moments while a client posts ten-item requests; after each
#    restart no request is partly journaled, every acknowledged one is
#    whole, and re-sending any request is safe (200 "already enqueued", or
#    202 for what was lost).
/usr/bin/python3 "$here/support/serve_kill.py" "$ordo" "$tmp/atomic" 15 30 \
  || fail=1

# 10. Storage faults: `ordo submit` with a low-probability fault on its
#    journal (ORDO_STORAGE_FAULT), killed with SIGKILL or stopped by the
#    fault, rerun a few times with faults and then once without: it
#    finishes and verify passes. A run the fault stops exits 1 and says why.
start_node "$tmp/node-sfault" 0 && {
  said=0
  for round in 1 2 3; do
    ORDO_STORAGE_FAULT="sync+write:eio:p=0.03:seed=$round:path=q-sfault" \
      "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" --data "$tmp/q-sfault" \
      --poll-ms 10 > /dev/null 2> "$tmp/sf.err" &
    sub=$!
    sleep 0.4
    kill -KILL "$sub" 2>/dev/null
    wait "$sub" 2>/dev/null; rc=$?
    case $rc in
      0|137) ;;
      1) if grep -q 'disk I/O error' "$tmp/sf.err"; then said=1; else
           echo "FAIL storage fault: exit 1 without the reason"; cat "$tmp/sf.err"; fail=1
         fi ;;
      *) echo "FAIL storage fault: exit $rc"; cat "$tmp/sf.err"; fail=1 ;;
    esac
  done
  [ "$said" = 1 ] && echo "ok   a journal fault stops ordo submit: $(grep -m1 'disk I/O' "$tmp/sf.err")"
  expect "submit after storage faults" 0 "$ordo" submit "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-sfault" --poll-ms 10
  expect "verify after storage faults" 0 "$ordo" verify --workload "$tmp/w2.jsonl" \
    --ledger "$url" --data "$tmp/q-sfault"
  stop_node
}

# 11. kill -9 loops across checkpoints.
#    Serial runs (a batch a block) are killed, so that each dies mid-way;
#    the last run, parallel, finishes.
start_node "$tmp/node-ck" 0 --block-ms 250 && {
  export ORDO_JOURNAL_CHECKPOINT_RECORDS=40
  for round in 1 2 3 4 5 6; do
    "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" --data "$tmp/q-ck" \
      --strategy serial --poll-ms 10 > /dev/null 2>&1 &
    sub=$!
    sleep "0.$((2 + round))"
    kill -KILL "$sub" 2>/dev/null
    wait "$sub" 2>/dev/null
  done
  expect "submit after kill -9 loops across checkpoints" 0 \
    "$ordo" submit "$tmp/w2.jsonl" --ledger "$url" --data "$tmp/q-ck" \
    --poll-ms 10 --json
  unset ORDO_JOURNAL_CHECKPOINT_RECORDS
  /usr/bin/python3 - "$tmp/out" "$tmp/q-ck" <<'PY' || fail=1
import glob, json, sqlite3, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["batches"] == 600, d
assert d["committed"] + d["invalid"] == 600, d
n = 0
for p in glob.glob(sys.argv[2] + "/*"):
    if p.endswith(("-wal", "-shm", ".lock")):
        continue
    try:
        c = sqlite3.connect(p)
        n += c.execute("SELECT count(*) FROM items WHERE category = "
                       "CAST('ck' AS BLOB)").fetchone()[0]
        c.close()
    except sqlite3.Error:
        pass
assert n >= 1, "no checkpoint in the journal"
assert d["sent"] > 0, d  # the kills left work for the last run
print("ok   kill -9 loops across checkpoints: %d committed, %d invalid, "
      "%d sent by the last run, a checkpoint on disk" %
      (d["committed"], d["invalid"], d["sent"]))
PY
  expect "verify after kill -9 loops across checkpoints" 0 "$ordo" verify \
    --workload "$tmp/w2.jsonl" --ledger "$url" --data "$tmp/q-ck"
  stop_node
}

# Bad usage.
expect "submit without --ledger" 2 "$ordo" submit "$tmp/w.jsonl" --data "$tmp/x"
expect "verify without --data" 2 "$ordo" verify --workload "$tmp/w.jsonl" --ledger http://127.0.0.1:1
expect "workload bad value" 2 "$ordo" workload --conflict 7

[ "$fail" = 0 ] && echo "e2e: all passed"
exit $fail
