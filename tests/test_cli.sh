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
# ordo bench soak: a short run (the default is 1,000,000 batches) reports
# the documented keys; --plot refuses to start without gnuplot and draws
# with it.
check "soak bad batches" 2 "$ordo" bench soak --batches 10
"$ordo" bench soak --batches 20000 --json >/tmp/ordo-soak-$$.json || { echo "FAIL soak run"; fail=1; }
$py - /tmp/ordo-soak-$$.json <<'PY' || fail=1
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("restart_s_final", "restart_s_fresh", "rss_mib_first", "rss_mib_final",
          "journal_mib_final", "batches_per_s"):
    assert isinstance(d[k], (int, float)) and d[k] > 0, (k, d.get(k))
assert d["batches"] == 20000 and d["services"] == 1000
s = d["series"]
assert [p["enqueued"] for p in s] == list(range(1000, 20001, 1000)), s
timed = [p for p in s if p["restart_s"] is not None]
assert len(timed) >= 3 and timed[-1] is s[-1], timed
assert all(p["open_s"] > 0 and p["rss_mib"] > 0 and p["journal_mib"] > 0 for p in timed)
assert 0 < d["unfinished_final"] < 1000 and d["finished"] + d["unfinished_final"] == 20000, d
assert d["invalid"] > 0
print("ok   soak json")
PY
check "soak --plot without gnuplot" 1 env PATH=/nonexistent "$ordo" bench soak --batches 1000 --plot /tmp/ordo-soak-$$.png
if command -v gnuplot >/dev/null; then
  check "soak --plot" 0 "$ordo" bench soak --batches 2000 --plot /tmp/ordo-soak-$$.png
  if [ -s /tmp/ordo-soak-$$.png ] && [ "$(wc -l </tmp/ordo-soak-$$.dat)" -ge 4 ]; then
    echo "ok   soak png and data"
  else
    echo "FAIL soak png and data"; fail=1
  fi
else
  echo "skip soak --plot (no gnuplot)"
fi
rm -f /tmp/ordo-soak-$$.json /tmp/ordo-soak-$$.png /tmp/ordo-soak-$$.dat
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
# The operator's signing key: refused world-readable (without quoting it),
# read at start otherwise, its public key on stderr and in /v1/queue.
skey=2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f746c3c2a63fe40088
printf '%s\n' "$skey" >"$sdir/key"
chmod 644 "$sdir/key"
check "serve world-readable signing key" 2 "$ordo" serve --port 0 --data "$sdir/d" --token-file "$sdir/token" --signing-key-file "$sdir/key"
if grep -q world-readable /tmp/ordo-cli-$$.out && ! grep -q "$skey" /tmp/ordo-cli-$$.out; then echo "ok   serve signing key refusal says why, not the key"; else echo "FAIL serve signing key refusal"; cat /tmp/ordo-cli-$$.out; fail=1; fi
printf '{"id":"k1","service":"s","writes":["a"]}\n' >"$sdir/w.jsonl"
check "submit world-readable key file" 2 "$ordo" submit "$sdir/w.jsonl" --ledger http://127.0.0.1:1 --data "$sdir/sub" --key-file "$sdir/key"
if grep -q "$skey" /tmp/ordo-cli-$$.out; then echo "FAIL submit printed the key"; fail=1; fi
chmod 600 "$sdir/key"
"$ordo" serve --port 0 --data "$sdir/d" --token-file "$sdir/token" --signing-key-file "$sdir/key" >"$sdir/out" 2>"$sdir/err" &
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
  spub=$(curl -s --max-time 10 -H 'Authorization: Bearer cli-token' "$surl/v1/queue" | $py -c 'import json,sys; print(json.load(sys.stdin).get("signer_public_key",""))')
  case "$spub" in
    0[23]*) if grep -q "signing as $spub" "$sdir/err"; then echo "ok   serve signing as its key"; else echo "FAIL serve signing line"; cat "$sdir/err"; fail=1; fi ;;
    *) echo "FAIL serve signer_public_key: '$spub'"; fail=1 ;;
  esac
fi
kill -TERM "$spid"
wait "$spid"
src=$?
if [ "$src" = 0 ]; then echo "ok   serve SIGTERM exit 0"; else echo "FAIL serve exit $src"; cat "$sdir/err"; fail=1; fi
if grep -q cli-token "$sdir/out" "$sdir/err"; then echo "FAIL serve printed the token"; fail=1; fi
if grep -q "$skey" "$sdir/out" "$sdir/err"; then echo "FAIL serve printed the signing key"; fail=1; fi
rm -rf "$sdir"
# ordo wallet and ordo did: a raw-key wallet (no KDF, fast), records and WQL,
# DIDs, sign/verify, rotation, pack/unpack, export/import, wrong keys, usage
# errors; and neither the wallet key nor the export key in any output.
wdir=$(mktemp -d /tmp/ordo-cli-wallet-XXXXXX)
wkey=6f72646f2d636c692d746573742d6b65792d3031323334353637383961626364
xkey=cli-export-passphrase-7f3a
ws="$wdir/ws"
wrun() { # wrun NAME EXPECTED_RC CMD...: stdout in $wdir/NAME.out, stderr in .err
  local name=$1 want=$2; shift 2
  "$@" >"$wdir/$name.out" 2>"$wdir/$name.err" </dev/null
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, want $want"; cat "$wdir/$name.out" "$wdir/$name.err"; fail=1
  else
    echo "ok   $name"
  fi
}
werr() { # werr NAME TEXT: TEXT is on NAME's stderr
  if grep -q -- "$2" "$wdir/$1.err"; then echo "ok   $1 says $2"; else
    echo "FAIL $1: no '$2' on stderr"; cat "$wdir/$1.err"; fail=1; fi
}
wjson() { # wjson NAME PYTHON: PYTHON asserts on d, NAME's stdout parsed
  $py -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$wdir/$1.out" \
    && echo "ok   $1 json" || { echo "FAIL $1 json"; cat "$wdir/$1.out"; fail=1; }
}
export ORDO_WALLET_KEY=$wkey
W="$ordo wallet"; R="$ordo wallet record"; D="$ordo did"
wrun wallet-help 0 $W --help
wrun wallet-no-command 2 $W
wrun wallet-unknown 2 $W frobnicate
wrun record-add-help 0 $R add --help
wrun did-help 0 $D --help
wrun did-sign-help 0 $D sign --help
wrun create 0 $W create --id w1 --path "$ws" --kdf raw --json
wjson create 'assert d == {"id": "w1"}, d'
wrun create-again 1 $W create --id w1 --path "$ws" --kdf raw
werr create-again ORDO_E_WALLET_EXISTS
wrun create-bad-kdf 2 $W create --id w9 --path "$ws" --kdf nope
wrun list 0 $W list --path "$ws" --json
wjson list 'assert [w["id"] for w in d["wallets"]] == ["w1"], d'
wrun open-check 0 $W open-check --id w1 --path "$ws"
wrun add-c1 0 $R add --id w1 --path "$ws" --type cred --name c1 --value v1 --tags '{"schema":"s1","~n":"5"}'
wrun add-c2 0 $R add --id w1 --path "$ws" --type cred --name c2 --value v2 --tags '{"schema":"s2","~n":"7"}'
wrun add-c3 0 $R add --id w1 --path "$ws" --type cred --name c3 --value v3 --tags '{"schema":"s1","~n":"9"}' --json
wjson add-c3 'assert d == {}, d'
wrun add-dup 1 $R add --id w1 --path "$ws" --type cred --name c1 --value x
werr add-dup ORDO_E_RECORD_DUPLICATE
wrun add-bad-tags 2 $R add --id w1 --path "$ws" --type cred --name c4 --tags '{"a":'
werr add-bad-tags ORDO_E_JSON
wrun get-c1 0 $R get --id w1 --path "$ws" --type cred --name c1 --json
wjson get-c1 'assert d["value"] == "v1" and d["tags"] == {"schema": "s1", "~n": "5"}, d'
wrun search-s1 0 $R search --id w1 --path "$ws" --type cred --query '{"schema":"s1"}' --json
wjson search-s1 'assert sorted(r["name"] for r in d["records"]) == ["c1", "c3"] and d["total"] == 2, d'
wrun search-range 0 $R search --id w1 --path "$ws" --type cred --query '{"~n":{"$gt":"6"}}' --limit 1 --json
wjson search-range 'assert len(d["records"]) == 1 and d["total"] == 2, d'
wrun search-text 0 $R search --id w1 --path "$ws" --type cred
if [ "$(grep -c "	" "$wdir/search-text.out")" = 3 ]; then echo "ok   search-text lines"; else echo "FAIL search-text lines"; cat "$wdir/search-text.out"; fail=1; fi
wrun search-bad-wql 2 $R search --id w1 --path "$ws" --type cred --query '{"$bogus":1}'
werr search-bad-wql ORDO_E_WQL
wrun search-bad-json 2 $R search --id w1 --path "$ws" --type cred --query '{"a"'
wrun search-bad-limit 2 $R search --id w1 --path "$ws" --type cred --limit -1
wrun count 0 $R count --id w1 --path "$ws" --type cred --json
wjson count 'assert d == {"count": 3}, d'
wrun update 0 $R update --id w1 --path "$ws" --type cred --name c1 --value v1b --add-tags '{"x":"y"}' --delete-tags '["schema"]' --json
wjson update 'assert d["value"] == "v1b" and d["tags"] == {"x": "y", "~n": "5"}, d'
wrun update-nothing 2 $R update --id w1 --path "$ws" --type cred --name c1
wrun delete-c2 0 $R delete --id w1 --path "$ws" --type cred --name c2
wrun get-c2 1 $R get --id w1 --path "$ws" --type cred --name c2
werr get-c2 ORDO_E_RECORD_NOT_FOUND
wrun count-after 0 $R count --id w1 --path "$ws" --type cred
if [ "$(cat "$wdir/count-after.out")" = 2 ]; then echo "ok   count-after is 2"; else echo "FAIL count-after"; fail=1; fi
# Wrong key, no key, keys on the command line, key files.
wrun wrong-key 1 env ORDO_WALLET_KEY=$(printf '%064d' 7) $W open-check --id w1 --path "$ws"
werr wrong-key ORDO_E_WALLET_ACCESS
wrun wrong-key-get 1 env ORDO_WALLET_KEY=$(printf '%064d' 7) $R get --id w1 --path "$ws" --type cred --name c1
werr wrong-key-get ORDO_E_WALLET_ACCESS
wrun no-key 2 env -u ORDO_WALLET_KEY $W open-check --id w1 --path "$ws"
wrun key-on-cmdline 2 $W open-check --id w1 --path "$ws" --key "$(printf '%064d' 7)"
wrun missing-id 2 $R add --path "$ws" --type cred --name c9
werr missing-id "missing --id"
wrun did-missing-id 2 $D create --path "$ws"
wrun missing-wallet 1 $W open-check --id nope --path "$ws"
werr missing-wallet ORDO_E_WALLET_NOT_FOUND
printf '%s\n' "$wkey" >"$wdir/keyfile"
chmod 644 "$wdir/keyfile"
wrun key-file-world-readable 2 env -u ORDO_WALLET_KEY $W open-check --id w1 --path "$ws" --key-file "$wdir/keyfile"
chmod 600 "$wdir/keyfile"
wrun key-file 0 env -u ORDO_WALLET_KEY $W open-check --id w1 --path "$ws" --key-file "$wdir/keyfile" --json
wjson key-file 'assert d == {"id": "w1", "open": True}, d'
# DIDs: create, list, sign, verify, rotate, pack/unpack; a seed from a file.
wrun did-create 0 $D create --id w1 --path "$ws" --metadata m1 --json
did=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["did"])' "$wdir/did-create.out")
vk=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["verkey"])' "$wdir/did-create.out")
wrun did-list 0 $D list --id w1 --path "$ws" --json
wjson did-list "assert [(x['did'], x['verkey'], x['metadata']) for x in d['dids']] == [('$did', '$vk', 'm1')], d"
wrun did-seed-on-cmdline 2 $D create --id w1 --path "$ws" --seed 000000000000000000000000Trustee1
printf '000000000000000000000000Trustee1' >"$wdir/seed"
chmod 600 "$wdir/seed"
wrun did-seeded 0 $D create --id w1 --path "$ws" --seed-file "$wdir/seed" --json
wjson did-seeded 'assert d["did"] == "V4SGRU86Z58d6TV7PBUe6f", d'
wrun sign 0 $D sign --id w1 --path "$ws" --verkey "$vk" --message "hello ordo" --json
sig=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["signature"])' "$wdir/sign.out")
wrun verify 0 $D verify --verkey "$vk" --signature "$sig" --message "hello ordo" --json
wjson verify 'assert d == {"valid": True}, d'
printf 'hello ordo' >"$wdir/msg"
wrun verify-in 0 $D verify --verkey "$vk" --signature "$sig" --in "$wdir/msg"
wrun verify-tampered 1 $D verify --verkey "$vk" --signature "$sig" --message "hello ordO"
wrun verify-bad-verkey 2 $D verify --verkey nope --signature "$sig" --message "hello ordo"
werr verify-bad-verkey ORDO_E_BAD_KEY
wrun sign-by-did 0 $D sign --id w1 --path "$ws" --did "$did" --in "$wdir/msg"
if [ "$(cat "$wdir/sign-by-did.out")" = "$sig" ]; then echo "ok   sign-by-did same signature"; else echo "FAIL sign-by-did"; fail=1; fi
wrun sign-no-message 2 $D sign --id w1 --path "$ws" --verkey "$vk"
wrun rotate 0 $D rotate --id w1 --path "$ws" --did "$did" --json
wrun apply 0 $D apply --id w1 --path "$ws" --did "$did" --json
wjson apply "assert d['verkey'] != '$vk', d"
wrun apply-again 1 $D apply --id w1 --path "$ws" --did "$did"
werr apply-again ORDO_E_STATE
wrun pack 0 $D pack --id w1 --path "$ws" --recipients "$vk" --sender "$vk" --message "for me"
cp "$wdir/pack.out" "$wdir/envelope"
wrun unpack 0 $D unpack --id w1 --path "$ws" --in "$wdir/envelope" --json
wjson unpack "assert d['message'] == 'for me' and d['sender_verkey'] == '$vk', d"
# Export and import, with an export key of its own.
wrun export 0 env ORDO_EXPORT_KEY=$xkey $W export --id w1 --path "$ws" --to "$wdir/w1.ordo" --export-kdf argon2id_interactive --json
wjson export 'assert d["records"] > 2, d'
wrun export-exists 1 env ORDO_EXPORT_KEY=$xkey $W export --id w1 --path "$ws" --to "$wdir/w1.ordo"
wrun import-wrong-key 1 env ORDO_EXPORT_KEY=not-$xkey $W import --id w2 --path "$ws" --kdf raw --from "$wdir/w1.ordo"
werr import-wrong-key ORDO_E_WALLET_ACCESS
cp "$wdir/w1.ordo" "$wdir/cut.ordo"
truncate -s -10 "$wdir/cut.ordo"
wrun import-truncated 1 env ORDO_EXPORT_KEY=$xkey $W import --id w2 --path "$ws" --kdf raw --from "$wdir/cut.ordo"
werr import-truncated ORDO_E_WALLET_FILE
wrun import 0 env ORDO_EXPORT_KEY=$xkey $W import --id w2 --path "$ws" --kdf raw --from "$wdir/w1.ordo" --json
wjson import 'assert d["id"] == "w2" and d["records"] > 2, d'
wrun import-count 0 $R count --id w2 --path "$ws" --type cred --json
wjson import-count 'assert d == {"count": 2}, d'
wrun import-dids 0 $D list --id w2 --path "$ws" --json
wjson import-dids "assert '$did' in [x['did'] for x in d['dids']], d"
wrun delete-w2 0 $W delete --id w2 --path "$ws"
wrun list-after 0 $W list --path "$ws" --json
wjson list-after 'assert [w["id"] for w in d["wallets"]] == ["w1"], d'
# ordo run keeps its work in a directory whose name has a space and a
# quote: no shell sees the paths (verify runs by fork/exec).
rdir="$wdir/run dir 'q"
wrun run-odd-dir 0 "$ordo" run --services 2 --batches 20 --block-ms 20 --keep "$rdir" --json
wjson run-odd-dir 'assert all(r["verified"] for r in d["runs"]), d'
[ -f "$rdir/verify-parallel.json" ] && echo "ok   run-odd-dir kept" || { echo "FAIL run-odd-dir: nothing kept in $rdir"; fail=1; }
# Without --json, ordo run names each server's dashboard with the run's
# token in the fragment (README, The dashboard).
wrun run-text 0 "$ordo" run --services 2 --batches 20 --block-ms 20
for s in serial parallel; do
  werr run-text "watch the $s run at http://127\.0\.0\.1:[0-9]*/ui#token=[0-9a-f]\{64\}"
done
unset ORDO_WALLET_KEY
if grep -l -e "$wkey" -e "$xkey" "$wdir"/*.out "$wdir"/*.err; then
  echo "FAIL a key appears in the output above"; fail=1
else
  echo "ok   no key in any output"
fi
rm -rf "$wdir"
rm -f /tmp/ordo-cli-$$.out /tmp/ordo-jn-$$.json /tmp/ordo-iso-$$.json /tmp/ordo-sc-$$.json \
  /tmp/ordo-sign-$$.json /tmp/ordo-kg-$$.json /tmp/ordo-sch-$$.json \
  /tmp/ordo-mk-$$.json
exit $fail
