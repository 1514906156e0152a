# pg_fixture.sh — a private PostgreSQL server for shell tests and benchmarks;
# the shell twin of support_pg.h, same rules. Source it (bash):
#
#   . tests/support/pg_fixture.sh
#   pg_fixture_start "$tmp/pg"; rc=$?
#   [ $rc = 2 ] && exit 77        # skipped: the message says why
#   [ $rc = 0 ] || exit 1         # failed: the message says what
#   trap pg_fixture_stop EXIT     # or call it from the script's own cleanup
#   psql "$PG_URL" -c 'SELECT 1'
#   pg_fixture_stop immediate; pg_fixture_restart   # a crash, then recovery
#
# pg_fixture_start DIR makes DIR (it must not exist, or be empty) and a
# cluster in it: initdb into DIR/data, pg_ctl start -w on 127.0.0.1 at a free
# port, unix socket in DIR/sock, log in DIR/server.log, trust auth for the
# user postgres, fsync on. It sets PG_URL
# (postgresql://postgres@127.0.0.1:PORT/postgres), PG_PORT, PG_DIR and
# PG_BINDIR (the server's programs: psql, pgbench are there too), and
# returns 0; 2 = skipped (the server programs are not installed: `make deps`),
# 1 = error (what failed, with the tail of the logs, on stderr). The caller
# removes DIR after pg_fixture_stop.
#
# As root, initdb and pg_ctl run as the postgres user (runuser -u postgres
# --), which must be able to reach DIR: directories above it under the
# temporary directory get o+x (search, not read); elsewhere it is an error.
#
# ORDO_TEST_POSTGRES_URL: use that server (PG_URL is it; nothing started;
#   stop and restart return 2). ORDO_REQUIRE_POSTGRES=1: missing server
#   programs are an error (1), not a skip. ORDO_TEST_POSTGRES_BINDIR: where
#   the server programs are, instead of looking.

PG_URL= PG_PORT= PG_DIR= PG_BINDIR=
_pg_fixture_external=

# Run a server program as the server's user, in PG_DIR, output to
# PG_DIR/commands.log.
_pg_fixture_as() {
  if [ "$(id -u)" = 0 ]; then
    (cd "$PG_DIR" && runuser -u postgres -- "$@") >> "$PG_DIR/commands.log" 2>&1 < /dev/null
  else
    (cd "$PG_DIR" && "$@") >> "$PG_DIR/commands.log" 2>&1 < /dev/null
  fi
}

# Print the error, with the logs' tails, to stderr; return 1.
_pg_fixture_fail() {
  local f
  echo "pg_fixture: error: $*" >&2
  for f in "$PG_DIR/commands.log" "$PG_DIR/server.log"; do
    [ -s "$f" ] || continue
    echo "--- $f (its end) ---" >&2
    tail -c 1200 "$f" >&2
  done
  return 1
}

_pg_fixture_has_server() {
  [ -x "$1/initdb" ] && [ -x "$1/pg_ctl" ] && [ -x "$1/postgres" ]
}

# The server programs' directory into PG_BINDIR, as support_pg.c
# looks: ORDO_TEST_POSTGRES_BINDIR, pg_config --bindir, the highest
# /usr/lib/postgresql/<version>/bin.
_pg_fixture_find_bindir() {
  local d
  if [ -n "${ORDO_TEST_POSTGRES_BINDIR:-}" ]; then
    _pg_fixture_has_server "$ORDO_TEST_POSTGRES_BINDIR" || return 1
    PG_BINDIR=$ORDO_TEST_POSTGRES_BINDIR
    return 0
  fi
  d=$(pg_config --bindir 2>/dev/null)
  if [ -n "$d" ] && _pg_fixture_has_server "$d"; then
    PG_BINDIR=$d
    return 0
  fi
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5n -r); do
    if _pg_fixture_has_server "$d"; then
      PG_BINDIR=$d
      return 0
    fi
  done
  return 1
}

# Skip (2), or fail (1) under ORDO_REQUIRE_POSTGRES=1.
_pg_fixture_missing() {
  local why="$*; \`make deps\` installs the PostgreSQL server (Debian package postgresql), or set ORDO_TEST_POSTGRES_URL to use a running one"
  if [ "${ORDO_REQUIRE_POSTGRES:-}" = 1 ]; then
    echo "pg_fixture: error: ORDO_REQUIRE_POSTGRES=1 and $why" >&2
    return 1
  fi
  echo "pg_fixture: skipped: $why" >&2
  return 2
}

# A port the kernel would give to a bind now (python3 is one of make deps'
# packages); else one at random: a taken one is retried.
_pg_fixture_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 12000))
}

# As root: let the postgres user search every directory above PG_DIR.
_pg_fixture_reachable() {
  local tmp d
  tmp=$(cd "${TMPDIR:-/tmp}" && pwd -P)
  d=$(cd "$(dirname "$PG_DIR")" && pwd -P)
  while [ "$d" != / ]; do
    if ! runuser -u postgres -- test -x "$d"; then
      case "$d/" in
        "$tmp"/?*) chmod o+x "$d" ;;
        *) _pg_fixture_fail "the postgres user cannot reach $d (above $PG_DIR); use a directory under $tmp"; return 1 ;;
      esac
    fi
    d=$(dirname "$d")
  done
}

_pg_fixture_pg_ctl_start() {
  _pg_fixture_as "$PG_BINDIR/pg_ctl" start -w -t 120 -D "$PG_DIR/data" \
    -l "$PG_DIR/server.log" -o "-p $PG_PORT"
}

pg_fixture_start() {
  local dir=$1 try from
  PG_URL= PG_PORT= PG_DIR= PG_BINDIR= _pg_fixture_external=
  if [ -n "${ORDO_TEST_POSTGRES_URL:-}" ]; then
    _pg_fixture_find_bindir # for psql and pgbench, when there
    PG_URL=$ORDO_TEST_POSTGRES_URL
    _pg_fixture_external=1
    return 0
  fi
  _pg_fixture_find_bindir || {
    _pg_fixture_missing "the PostgreSQL server programs (initdb, pg_ctl, postgres) are not installed: neither ORDO_TEST_POSTGRES_BINDIR, \`pg_config --bindir\` nor /usr/lib/postgresql/*/bin has them"
    return
  }
  if [ "$(id -u)" = 0 ]; then
    id -u postgres > /dev/null 2>&1 || {
      _pg_fixture_missing "running as root, with no postgres system user to run the server as"
      return
    }
    command -v runuser > /dev/null || {
      _pg_fixture_missing "running as root, without runuser (util-linux) to run the server as postgres"
      return
    }
  fi
  mkdir -p "$dir" || { echo "pg_fixture: error: mkdir $dir failed" >&2; return 1; }
  PG_DIR=$(cd "$dir" && pwd -P)
  if [ -n "$(ls -A "$PG_DIR")" ]; then
    echo "pg_fixture: error: $PG_DIR is not empty" >&2
    PG_DIR=
    return 1
  fi
  mkdir "$PG_DIR/sock"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$PG_DIR" "$PG_DIR/sock" || { _pg_fixture_fail "chown $PG_DIR to postgres failed"; return 1; }
    _pg_fixture_reachable || return 1
  fi
  # --no-sync only skips initdb's own flush; the server runs with fsync on.
  _pg_fixture_as "$PG_BINDIR/initdb" -D "$PG_DIR/data" --no-sync \
    -A trust -U postgres -E UTF8 --no-locale || { _pg_fixture_fail "initdb failed"; return 1; }
  cat >> "$PG_DIR/data/postgresql.conf" <<EOF

# tests/support/pg_fixture.sh: a private server for one test.
listen_addresses = '127.0.0.1'
unix_socket_directories = '$PG_DIR/sock'
max_connections = 300
shared_buffers = 16MB
fsync = on
synchronous_commit = on
full_page_writes = on
EOF
  # Another process may take the port before the server binds it: retry on
  # a new one when the log says so.
  for try in 1 2 3 4 5; do
    PG_PORT=$(_pg_fixture_free_port)
    from=$(( $(stat -c %s "$PG_DIR/server.log" 2>/dev/null || echo 0) + 1 ))
    if _pg_fixture_pg_ctl_start; then
      PG_URL=postgresql://postgres@127.0.0.1:$PG_PORT/postgres
      return 0
    fi
    tail -c +"$from" "$PG_DIR/server.log" 2>/dev/null | grep -q 'Address already in use' || break
  done
  _pg_fixture_fail "pg_ctl start (port $PG_PORT) failed"
}

# pg_fixture_stop [immediate]: pg_ctl stop -m fast, or -m immediate (a
# crash: committed work comes back from the WAL on restart). 0 also when
# nothing runs; 2 for an external server (not ours).
pg_fixture_stop() {
  local mode=fast
  [ "${1:-}" = immediate ] && mode=immediate
  if [ -n "$_pg_fixture_external" ]; then
    echo "pg_fixture: skipped: the server at ORDO_TEST_POSTGRES_URL is not ours to stop" >&2
    return 2
  fi
  [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] || return 0
  _pg_fixture_as "$PG_BINDIR/pg_ctl" stop -w -t 120 -D "$PG_DIR/data" -m "$mode" ||
    _pg_fixture_fail "pg_ctl stop -m $mode failed"
}

# Start the stopped server again: same directory, same port, same PG_URL.
pg_fixture_restart() {
  if [ -n "$_pg_fixture_external" ]; then
    echo "pg_fixture: skipped: the server at ORDO_TEST_POSTGRES_URL is not ours to restart" >&2
    return 2
  fi
  [ -n "$PG_DIR" ] && [ -n "$PG_PORT" ] || { echo "pg_fixture: error: no cluster to restart" >&2; return 1; }
  [ -f "$PG_DIR/data/postmaster.pid" ] && return 0
  _pg_fixture_pg_ctl_start || _pg_fixture_fail "pg_ctl start (port $PG_PORT) failed"
}

# pg_fixture_start_or_exit DIR: pg_fixture_start for a test script, which
# exits 77 (ctest: skipped) when the server programs are missing and 1 when
# the server did not start.
pg_fixture_start_or_exit() {
  pg_fixture_start "$1"
  case $? in
    0) ;;
    2) exit 77 ;;
    *) exit 1 ;;
  esac
}

# pg_psql [-d URL] ARGS...: psql, quiet and unaligned, stopping at the first
# error, on the server's default database (PG_URL) or on URL.
pg_psql() {
  local on=$PG_URL
  [ "${1:-}" = -d ] && { on=$2; shift 2; }
  "${PG_BINDIR:+$PG_BINDIR/}psql" -X -q -At -v ON_ERROR_STOP=1 "$on" "$@"
}
