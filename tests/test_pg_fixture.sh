#!/usr/bin/env bash
# tests/support/pg_fixture.sh (ctest label pg_fixture), the shell twin of
# test_pg_fixture.c: a row committed, the server stopped with -m immediate
# (a crash), nothing answers, restarted on the same port, the row is there.
# Exit 77 (skipped) when the server programs are not installed.
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/support/pg_fixture.sh"
tmp=$(mktemp -d /tmp/ordo-pgsh-XXXXXX)
cleanup() {
  pg_fixture_stop immediate 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT

pg_fixture_start_or_exit "$tmp/pg"
psql() { pg_psql "$@"; }
fail() { echo "FAIL $*"; exit 1; }
table=ordo_fixture_sh_$$

[ "$(psql -c 'SELECT 1')" = 1 ] || fail "SELECT 1"
psql -c "CREATE TABLE $table (id int PRIMARY KEY, note text NOT NULL)" || fail "CREATE TABLE"
psql -c "INSERT INTO $table VALUES (1, 'committed')" || fail "INSERT"

pg_fixture_stop immediate
case $? in
  0) ;;
  2) psql -c "DROP TABLE $table"; echo "skipped the crash: external server"; exit 0 ;;
  *) fail "pg_fixture_stop immediate" ;;
esac
psql -c 'SELECT 1' 2>/dev/null && fail "a server still answers after the stop"
pg_fixture_stop || fail "pg_fixture_stop of a stopped server"

port=$PG_PORT
pg_fixture_restart || fail "pg_fixture_restart"
[ "$PG_PORT" = "$port" ] || fail "restart moved the port"
grep -q 'automatic recovery in progress' "$PG_DIR/server.log" || fail "no crash recovery in the log"
[ "$(psql -c "SELECT note FROM $table WHERE id = 1")" = committed ] || fail "the committed row is gone"
pg_fixture_stop || fail "pg_fixture_stop"
echo "ok: pg_fixture.sh (port $port)"
