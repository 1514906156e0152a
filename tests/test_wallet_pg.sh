#!/usr/bin/env bash
# ordo wallet and ordo did with --path postgres://…: the wallets are stores
# of that database (a private server, tests/support/pg_fixture.sh). Create,
# records, search, list, export, import, delete, a DID; and no output ever
# shows the URL's password — also when the server cannot be reached or the
# URL is refused. Exit 77 (skipped) when the server programs are missing.
set -u
ordo="$1"
here=$(cd "$(dirname "$0")" && pwd)
. "$here/support/pg_fixture.sh"
py=/usr/bin/python3
tmp=$(mktemp -d /tmp/ordo-wpgsh-XXXXXX)
cleanup() {
  pg_fixture_stop immediate 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

pg_fixture_start_or_exit "$tmp/pg"
psql() { pg_psql "$@"; }
fail=0
pw=SECRETPW
db=cli_$$
psql -c "CREATE DATABASE $db" || { echo "FAIL CREATE DATABASE"; exit 1; }
if [ -n "$PG_PORT" ]; then
  # Our server trusts every connection: any password is accepted, so one in
  # the URL costs nothing and shows whether a message repeats it.
  url="postgresql://postgres:$pw@127.0.0.1:$PG_PORT/$db"
else
  url="${PG_URL%/*}/$db"  # an external server: its own credentials
fi

psql_db() { "${PG_BINDIR:+$PG_BINDIR/}psql" -X -q -At -v ON_ERROR_STOP=1 "$url" "$@"; }

run() { # run NAME EXPECTED_RC CMD...: stdout in $tmp/NAME.out, stderr in .err
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/$name.out" 2>"$tmp/$name.err" </dev/null
  local rc=$?
  if [ "$rc" != "$want" ]; then
    echo "FAIL $name: exit $rc, want $want"; cat "$tmp/$name.out" "$tmp/$name.err"; fail=1
  else
    echo "ok   $name"
  fi
}
says() { # says NAME TEXT: TEXT is on NAME's stderr
  if grep -q -- "$2" "$tmp/$1.err"; then echo "ok   $1 says $2"; else
    echo "FAIL $1: no '$2' on stderr"; cat "$tmp/$1.err"; fail=1; fi
}
js() { # js NAME PYTHON: PYTHON asserts on d, NAME's stdout parsed
  $py -c "import json,sys; d=json.load(open(sys.argv[1])); $2" "$tmp/$1.out" \
    && echo "ok   $1 json" || { echo "FAIL $1 json"; cat "$tmp/$1.out"; fail=1; }
}

export ORDO_WALLET_KEY=6f72646f2d636c692d746573742d6b65792d3031323334353637383961626364
W="$ordo wallet"; R="$ordo wallet record"; D="$ordo did"
run create 0 $W create --id w1 --path "$url" --kdf raw --json
js create 'assert d == {"id": "w1"}, d'
[ "$(psql_db -c "SELECT name FROM ordo_store")" = wallet/w1 ] \
  && echo "ok   the wallet is the store wallet/w1" || { echo "FAIL no store wallet/w1"; fail=1; }
run create-again 1 $W create --id w1 --path "$url" --kdf raw
says create-again ORDO_E_WALLET_EXISTS
run list 0 $W list --path "$url" --json
js list 'assert [w["id"] for w in d["wallets"]] == ["w1"], d'
run add-c1 0 $R add --id w1 --path "$url" --type cred --name c1 --value v1 --tags '{"schema":"s1","~n":"5"}'
run add-c2 0 $R add --id w1 --path "$url" --type cred --name c2 --value v2 --tags '{"schema":"s2","~n":"7"}'
run add-c3 0 $R add --id w1 --path "$url" --type cred --name c3 --value v3 --tags '{"schema":"s1","~n":"9"}'
run add-dup 1 $R add --id w1 --path "$url" --type cred --name c1 --value x
says add-dup ORDO_E_RECORD_DUPLICATE
run get-c1 0 $R get --id w1 --path "$url" --type cred --name c1 --json
js get-c1 'assert d["value"] == "v1" and d["tags"] == {"schema": "s1", "~n": "5"}, d'
run search 0 $R search --id w1 --path "$url" --type cred --query '{"schema":"s1","~n":{"$gt":"6"}}' --json
js search 'assert [r["name"] for r in d["records"]] == ["c3"] and d["total"] == 1, d'
run count 0 $R count --id w1 --path "$url" --type cred --json
js count 'assert d == {"count": 3}, d'
run delete-c2 0 $R delete --id w1 --path "$url" --type cred --name c2
run wrong-key 1 env ORDO_WALLET_KEY=$(printf '%064d' 7) $W open-check --id w1 --path "$url"
says wrong-key ORDO_E_WALLET_ACCESS
run did-create 0 $D create --id w1 --path "$url" --metadata m1 --json
did=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["did"])' "$tmp/did-create.out")
run did-list 0 $D list --id w1 --path "$url" --json
js did-list "assert [x['did'] for x in d['dids']] == ['$did'], d"
run export 0 env ORDO_EXPORT_KEY=cli-export-pass $W export --id w1 --path "$url" --to "$tmp/w1.ordo" --json
js export 'assert d["records"] > 2, d'
run import 0 env ORDO_EXPORT_KEY=cli-export-pass $W import --id w2 --path "$url" --kdf raw --from "$tmp/w1.ordo" --json
js import 'assert d["id"] == "w2" and d["records"] > 2, d'
run import-count 0 $R count --id w2 --path "$url" --type cred --json
js import-count 'assert d == {"count": 2}, d'
run import-dids 0 $D list --id w2 --path "$url" --json
js import-dids "assert [x['did'] for x in d['dids']] == ['$did'], d"
run list-two 0 $W list --path "$url" --json
js list-two 'assert [w["id"] for w in d["wallets"]] == ["w1", "w2"], d'
run delete-w2 0 $W delete --id w2 --path "$url"
run list-after 0 $W list --path "$url" --json
js list-after 'assert [w["id"] for w in d["wallets"]] == ["w1"], d'
run missing 1 $W open-check --id nope --path "$url"
says missing ORDO_E_WALLET_NOT_FOUND
[ -n "$PG_PORT" ] && says missing "in postgres@127.0.0.1:$PG_PORT/$db\$"  # where, without the password
# Refused or failing URLs: a store name where a database is meant; a port
# where no server listens (ordo_wait=1: give up after a second).
run url-with-store 2 $W create --id w3 --path "$url#x" --kdf raw
run unreachable 1 $W list --path "postgresql://postgres:$pw@127.0.0.1:1/$db?ordo_wait=1"
says unreachable ORDO_E_STORAGE
run unreachable-open 1 $R count --id w1 --path "postgresql://postgres:$pw@127.0.0.1:1/$db?ordo_wait=1" --type cred
says unreachable-open ORDO_E_STORAGE
unset ORDO_WALLET_KEY

# The benchmarks on PostgreSQL, briefly: the JSON keys SQLite's have, SQLite
# beside them, the 200 wallets of 20 processes; no server: a usage error.
run bench-wallet 0 "$ordo" bench wallet --backend postgres --postgres "$url" \
  --seconds 0.2 --threads 1,8 --json
js bench-wallet 'assert d["backend"] == "postgres" and d["group_vs_raw_8"] > 0 and d["group_vs_naive_8"] > 0 and d["sqlite"]["group_vs_raw_8"] > 0 and d["many_wallets_opened"] == 200 and 0 < d["many_wallets_peak_connections"] <= 20 * 4, d'
run bench-journal 0 "$ordo" bench journal --backend postgres --postgres "$url" \
  --seconds 0.2 --threads 1,8 --json
js bench-journal 'assert d["backend"] == "postgres" and d["group_vs_single_8"] > 0 and d["raw_per_s"] > 0 and "group_vs_single_8" in d["sqlite"], d'
run bench-no-server 2 env -u ORDO_POSTGRES_URL "$ordo" bench wallet --backend postgres
says bench-no-server "needs the server"

if [ -n "$PG_PORT" ]; then
  if grep -l -- "$pw" "$tmp"/*.out "$tmp"/*.err; then
    echo "FAIL the URL's password appears in the output above"; fail=1
  else
    echo "ok   no password in any output"
  fi
fi
psql -c "DROP DATABASE $db" || fail=1
exit $fail
