#!/usr/bin/env bash
# The dashboard in a real browser (ctest label e2e): headless Chromium,
# driven over the W3C WebDriver protocol (tests/support/webdriver.py, Debian's
# /usr/bin/python3 standard library only) against `ordo serve` with the
# embedded `ordo ledger` behind it and a workload in flight for the whole
# run (tests/support/ui_check.py says what is checked): no console errors,
# the services table's counts, a waiting batch's blockers, halt/resume and
# cancel through the page, a wrong token showing an error and no data.
# Screenshots (dashboard.png, batch.png, wrong-token.png) go to
# ui-screenshots/ in the working directory, and to $ORDO_UI_SCREENSHOT_DIR
# when set.
#
# Skipped (77) without /usr/bin/chromium or /usr/bin/chromedriver, unless
# ORDO_REQUIRE_BROWSER is set (CI sets it): then their absence fails.
#
# ORDO_UI_SCALE=1: the scale run instead (no ledger, 10,000 services x 10
# batches; prints the page's and the server's timings); not run by ctest.
set -u
ordo="$1"
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3

missing=""
for p in /usr/bin/chromium /usr/bin/chromedriver "$py"; do
  [ -x "$p" ] || missing="$missing $p"
done
if [ -n "$missing" ]; then
  if [ -n "${ORDO_REQUIRE_BROWSER:-}" ]; then
    echo "FAIL ORDO_REQUIRE_BROWSER is set and these are missing:$missing" \
         "(make deps installs chromium chromium-driver)"
    exit 1
  fi
  echo "SKIP no browser:$missing (install chromium chromium-driver)"
  exit 77
fi

shots="$PWD/ui-screenshots"
mkdir -p "$shots"
tmp=$(mktemp -d /tmp/ordo-ui-XXXXXX)
fail=0
node_pid= serve_pid= check_pid=
cleanup() {
  # The check first (it ends its chromedriver and chromium on SIGTERM).
  [ -n "$check_pid" ] && kill -TERM "$check_pid" 2>/dev/null && wait "$check_pid" 2>/dev/null
  [ -n "$serve_pid" ] && kill -TERM "$serve_pid" 2>/dev/null
  [ -n "$node_pid" ] && kill -TERM "$node_pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# wait_listening OUT_FILE ERR_FILE WHAT: the URL of a 'listening on' line.
wait_listening() {
  local u
  for _ in $(seq 1 600); do
    u=$(sed -n 's/^listening on \(http:\/\/127\.0\.0\.1:[0-9]*\).*/\1/p' "$1" | head -n 1)
    [ -n "$u" ] && { echo "$u"; return 0; }
    sleep 0.1
  done
  echo "FAIL $3 did not start" >&2; cat "$2" >&2
  return 1
}

"$py" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$tmp/token"
chmod 600 "$tmp/token"

ledger_args=()
if [ -z "${ORDO_UI_SCALE:-}" ]; then
  "$ordo" ledger --port 0 --block-ms 50 --seed 7 --data "$tmp/node" \
    > "$tmp/node.out" 2> "$tmp/node.err" &
  node_pid=$!
  url=$(wait_listening "$tmp/node.out" "$tmp/node.err" "ordo ledger") || exit 1
  # The operator's key (test_cli.sh's): items with "transactions" are
  # signed by the server.
  printf '2f1e7b7a130d7ba9da0068b3bb0ba1d79e7e77110302c9f746c3c2a63fe40088\n' \
    > "$tmp/key"
  chmod 600 "$tmp/key"
  ledger_args=(--ledger "$url" --signing-key-file "$tmp/key")
fi

"$ordo" serve --port 0 --data "$tmp/data" --token-file "$tmp/token" \
  "${ledger_args[@]}" > "$tmp/serve.out" 2> "$tmp/serve.err" &
serve_pid=$!
surl=$(wait_listening "$tmp/serve.out" "$tmp/serve.err" "ordo serve") || exit 1

code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$surl/ui")
if [ "$code" != 200 ]; then
  echo "FAIL GET /ui: $code, want 200"
  exit 1
fi
echo "ok   GET /ui without a token: 200"
# The page's headers: a strict CSP and friends (no token needed).
curl -s -D "$tmp/ui.h" -o /dev/null --max-time 30 "$surl/ui"
for h in "Content-Security-Policy: default-src 'none'" \
         "X-Content-Type-Options: nosniff" "X-Frame-Options: DENY" \
         "Cache-Control: no-store"; do
  if grep -qi "^$h" "$tmp/ui.h"; then echo "ok   /ui header $h"
  else echo "FAIL /ui header $h missing"; fail=1; fi
done

mode=()
[ -n "${ORDO_UI_SCALE:-}" ] && mode=(--scale)
"$py" "$here/support/ui_check.py" "${mode[@]}" "$surl" "$tmp/token" "$shots" &
check_pid=$!
wait "$check_pid"
rc=$?
check_pid=
[ "$rc" = 0 ] || fail=1

if ! kill -0 "$serve_pid" 2>/dev/null; then
  echo "FAIL ordo serve died"; tail -n 30 "$tmp/serve.err"; fail=1
fi
kill -TERM "$serve_pid" 2>/dev/null
wait "$serve_pid"
src=$?
serve_pid=
if [ "$src" != 0 ]; then
  echo "FAIL ordo serve exit $src"; tail -n 30 "$tmp/serve.err"; fail=1
fi
if grep -q "$(cat "$tmp/token")" "$tmp/serve.out" "$tmp/serve.err"; then
  echo "FAIL ordo serve printed the token"; fail=1
fi

if [ "$fail" != 0 ]; then
  echo "FAIL test_ui (screenshots in $shots)"
  exit 1
fi
echo "PASS test_ui (screenshots in $shots)"
exit 0
