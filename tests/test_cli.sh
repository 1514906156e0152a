#!/usr/bin/env bash
# The ordo CLI: exit codes, help, and that each benchmark runs and reports the
# documented JSON keys. Short runs; no timing is asserted.
set -u
ordo="$1"
py=/usr/bin/python3
fail=0
check() { # check NAME EXPECTED_RC CMD...
  local name=$1 want=$2; shift 2
  "$@" >/tmp/ordo-cli-$$.out 2>&1
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, want $want"; cat /tmp/ordo-cli-$$.out; fail=1
  else
    echo "ok   $name"
  fi
}
check "help" 0 "$ordo" --help
check "version" 0 "$ordo" --version
check "no command" 2 "$ordo"
check "unknown command" 2 "$ordo" frobnicate
check "unknown flag" 2 "$ordo" --frobnicate
check "bench help" 0 "$ordo" bench --help
check "unknown benchmark" 2 "$ordo" bench nope
check "bad seconds" 2 "$ordo" bench isolation --seconds abc
check "bad threads" 2 "$ordo" bench scaling --threads 1,x

"$ordo" bench isolation --seconds 0.5 --json >/tmp/ordo-iso-$$.json || { echo "FAIL isolation run"; fail=1; }
$py - /tmp/ordo-iso-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("idle_p99_us", "loaded_p99_us", "ratio", "baseline_loaded_p99_us", "baseline_ratio"):
    assert k in d and isinstance(d[k], (int, float)), k
assert d["idle_count"] > 0 and d["loaded_count"] > 0 and d["baseline_loaded_count"] > 0
print("ok   isolation json")
PY
"$ordo" bench scaling --seconds 0.3 --threads 1,2 --json >/tmp/ordo-sc-$$.json || { echo "FAIL scaling run"; fail=1; }
$py - /tmp/ordo-sc-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cores"] >= 1
assert [p["threads"] for p in d["points"]] == [1, 2]
assert all(p["ops_per_s"] > 0 for p in d["points"])
print("ok   scaling json")
PY
check "bad bits" 2 "$ordo" bench keygen --bits 100
check "bad count" 2 "$ordo" bench keygen --count 0
"$ordo" bench sign --seconds 0.05 --threads 1,2 --json >/tmp/ordo-sign-$$.json || { echo "FAIL sign run"; fail=1; }
$py - /tmp/ordo-sign-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["cores"] >= 1
ops = ["ed25519_sign", "ed25519_verify", "secp256k1_sign", "secp256k1_verify"]
assert [(p["op"], p["threads"]) for p in d["points"]] == [(o, n) for o in ops for n in (1, 2)]
assert all(p["ops_per_s"] > 0 and "linear_ratio" in p for p in d["points"])
print("ok   sign json")
PY
"$ordo" bench keygen --count 2 --bits 256 --json >/tmp/ordo-kg-$$.json || { echo "FAIL keygen run"; fail=1; }
$py - /tmp/ordo-kg-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["count"] == 2 and d["bits"] == 256
assert 0 < d["min_s"] <= d["median_s"] <= d["max_s"]
print("ok   keygen json")
PY
"$ordo" bench scheduler --count 2000 --json >/tmp/ordo-sch-$$.json || { echo "FAIL scheduler run"; fail=1; }
$py - /tmp/ordo-sch-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
# --count 2000 caps the points at 2000: the 100k point is not measured.
assert "ns_per_batch_100k" in d and d["ns_per_batch_100k"] is None
pts = d["points"]
assert [(p["batches"], p["services"]) for p in pts] == \
    [(n, s) for n in (1000, 2000) for s in (1, 100, 10000)]
for p in pts:
    assert p["ns_per_batch"] > 0 and p["rounds"] >= 1 and p["max_rss_mib"] >= 0
    assert abs(p["enqueue_ns_per_batch"] + p["drain_ns_per_batch"] - p["ns_per_batch"]) < 1
print("ok   scheduler json")
PY
check "makespan count too big" 2 "$ordo" bench makespan --count 20001
"$ordo" bench makespan --count 400 --json >/tmp/ordo-mk-$$.json || { echo "FAIL makespan run"; fail=1; }
$py - /tmp/ordo-mk-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
ws = d["workloads"]
assert [w["name"] for w in ws] == ["conflict_0", "conflict_10", "conflict_50",
    "conflict_90", "hot_read", "hot_write", "chains"]
for w in ws:
    assert w["batches"] == 400
    # The critical path bounds every safe strategy; coarser locks cost more.
    assert 1 <= w["critical_path"] <= w["parallel"] <= w["by_namespace"] <= w["serial"] <= 400, w
    assert w["unconstrained"] <= w["parallel"], w
    assert w["parallel_vs_critical"] >= 1
by = {w["name"]: w for w in ws}
assert by["conflict_0"]["critical_path"] == 1 and by["hot_read"]["critical_path"] == 1
assert by["conflict_90"]["unconstrained_violations"] > 0
assert d["max_parallel_vs_critical"] == max(w["parallel_vs_critical"] for w in ws)
print("ok   makespan json")
PY
"$ordo" bench journal --seconds 0.2 --threads 1,8 --json >/tmp/ordo-jn-$$.json || { echo "FAIL journal run"; fail=1; }
$py - /tmp/ordo-jn-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert [p["callers"] for p in d["points"]] == [1, 8]
for p in d["points"]:
    assert p["group_per_s"] > 0 and p["single_per_s"] > 0
    assert p["batches_per_commit"] >= 1
assert "group_vs_single_8" in d
print("ok   journal json")
PY
"$ordo" bench e2e --count 60 --json >/tmp/ordo-e2e-$$.json || { echo "FAIL e2e bench run"; fail=1; }
$py - /tmp/ordo-e2e-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
assert d["batches"] == 60 and len(d["points"]) == 6
for p in d["points"]:
    assert p["serial_per_s"] > 0 and p["parallel_per_s"] > 0, p
    assert 0 < p["parallel_p50_ms"] <= p["parallel_p99_ms"], p
assert "parallel_vs_serial_10pct_20svc" in d
print("ok   e2e bench json")
PY
rm -f /tmp/ordo-e2e-$$.json
check "plan help" 0 "$ordo" plan --help
check "plan missing file" 2 "$ordo" plan /nonexistent/workload.jsonl
check "ledger help" 0 "$ordo" ledger --help
check "ledger bad flag" 2 "$ordo" ledger --frobnicate
check "ledger missing data" 2 "$ordo" ledger --port 0
check "ledger bad fail rate" 2 "$ordo" ledger --data /tmp/ordo-cli-none --fail-rate 1.5
check "ledger bad bind" 2 "$ordo" ledger --data /tmp/ordo-cli-none --bind localhost
# The node on an ephemeral loopback port: the first stdout line names it,
# /blocks answers, and SIGTERM stops it with exit 0.
ldir=$(mktemp -d /tmp/ordo-cli-ledger-XXXXXX)
"$ordo" ledger --port 0 --block-ms 20 --data "$ldir/db" >"$ldir/out" 2>"$ldir/err" &
lpid=$!
url=""
for _ in $(seq 200); do
  url=$(sed -n '1s/^listening on //p' "$ldir/out")
  [ -n "$url" ] && break
  sleep 0.05
done
case "$url" in
  http://127.0.0.1:[0-9]*) echo "ok   ledger listening line" ;;
  *) echo "FAIL ledger listening line: '$url'"; cat "$ldir/out" "$ldir/err"; fail=1 ;;
esac
if [ -n "$url" ]; then
  curl -sf --max-time 10 "$url/blocks" | $py -c '
import json, sys
d = json.load(sys.stdin)
assert d["data"][-1]["header"]["block_num"] == "0", d
assert d["head"] == d["data"][0]["header_signature"], d
print("ok   ledger /blocks")' || { echo "FAIL ledger /blocks"; fail=1; }
fi
kill -TERM "$lpid"
wait "$lpid"
lrc=$?
if [ "$lrc" = 0 ]; then echo "ok   ledger SIGTERM exit 0"; else echo "FAIL ledger exit $lrc"; cat "$ldir/err"; fail=1; fi
rm -rf "$ldir"
# ordo serve: help, bad flag, a token file that is world-readable, then a
# server on an ephemeral loopback port with a token: the listening line,
# /healthz without the token, 401 and 200 on /v1/queue, SIGTERM exit 0.
check "serve help" 0 "$ordo" serve --help
check "serve bad flag" 2 "$ordo" serve --frobnicate
check "serve missing data" 2 "$ordo" serve --port 0
sdir=$(mktemp -d /tmp/ordo-cli-serve-XXXXXX)
printf 'cli-token\n' >"$sdir/token"
chmod 644 "$sdir/token"
check "serve world-readable token" 2 "$ordo" serve --port 0 --data "$sdir/d" --token-file "$sdir/token"
check "serve non-loopback without token" 2 "$ordo" serve --port 0 --data "$sdir/d" --bind 0.0.0.0
chmod 600 "$sdir/token"
"$ordo" serve --port 0 --data "$sdir/d" --token-file "$sdir/token" >"$sdir/out" 2>"$sdir/err" &
spid=$!
surl=""
for _ in $(seq 200); do
  surl=$(sed -n '1s/^listening on //p' "$sdir/out")
  [ -n "$surl" ] && break
  sleep 0.05
done
case "$surl" in
  http://127.0.0.1:[0-9]*) echo "ok   serve listening line" ;;
  *) echo "FAIL serve listening line: '$surl'"; cat "$sdir/out" "$sdir/err"; fail=1 ;;
esac
if [ -n "$surl" ]; then
  curl -sf --max-time 10 "$surl/healthz" | $py -c '
import json, sys
d = json.load(sys.stdin)
assert d["ok"] is True, d
print("ok   serve /healthz")' || { echo "FAIL serve /healthz"; fail=1; }
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$surl/v1/queue")
  if [ "$code" = 401 ]; then echo "ok   serve 401 without token"; else echo "FAIL serve no token: $code"; fail=1; fi
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -H 'Authorization: Bearer cli-token' "$surl/v1/queue")
  if [ "$code" = 200 ]; then echo "ok   serve 200 with token"; else echo "FAIL serve token: $code"; fail=1; fi
fi
kill -TERM "$spid"
wait "$spid"
src=$?
if [ "$src" = 0 ]; then echo "ok   serve SIGTERM exit 0"; else echo "FAIL serve exit $src"; cat "$sdir/err"; fail=1; fi
if grep -q cli-token "$sdir/out" "$sdir/err"; then echo "FAIL serve printed the token"; fail=1; fi
rm -rf "$sdir"
rm -f /tmp/ordo-cli-$$.out /tmp/ordo-jn-$$.json /tmp/ordo-iso-$$.json /tmp/ordo-sc-$$.json \
  /tmp/ordo-sign-$$.json /tmp/ordo-kg-$$.json /tmp/ordo-sch-$$.json \
  /tmp/ordo-mk-$$.json
exit $fail
