#!/usr/bin/env bash
# status_requests.sh ORDO [BLOCK_MS] [BATCHES] — how many requests `ordo
# submit` sends the ledger per second and per block: the embedded node with
# blocks of BLOCK_MS (default 1000), a counting proxy in front of it
# (count_proxy.py), a workload of BATCHES (default 600) over 20 services.
# Prints one line of JSON: blocks, seconds, requests by method and path,
# status requests per second and per block. Pass another build's ordo to
# compare (both talk to the same node build: NODE=path/to/ordo). NODE_FLAGS
# adds node flags (e.g. "--refuse-rate 0.01" to count the POSTs that
# splitting refused lists costs).
# Everything listens on 127.0.0.1 only and stops by itself.
set -eu
ordo=$1
block_ms=${2:-1000}
batches=${3:-600}
node_bin=${NODE:-$ordo}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d /tmp/ordo-statusreq-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

wait_line() { # wait_line FILE -> the port of "listening on http://127.0.0.1:P"
  for _ in $(seq 1 100); do
    p=$(sed -n 's/^listening on http:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$1" | head -n 1)
    [ -n "$p" ] && { echo "$p"; return 0; }
    sleep 0.1
  done
  return 1
}

# shellcheck disable=SC2086 # NODE_FLAGS is a list of flags
"$node_bin" ledger --port 0 --block-ms "$block_ms" --seed 7 --data "$tmp/node" \
  ${NODE_FLAGS:-} > "$tmp/node.out" 2> "$tmp/node.err" &
pids+=($!)
node_port=$(wait_line "$tmp/node.out")
/usr/bin/python3 "$here/count_proxy.py" "$node_port" "$tmp/counts.json" \
  > "$tmp/proxy.out" &
proxy_pid=$!
pids+=($proxy_pid)
proxy_port=$(wait_line "$tmp/proxy.out")

"$ordo" workload --services 20 --batches "$batches" --conflict 0.3 --seed 11 \
  > "$tmp/w.jsonl"
start=$(date +%s.%N)
"$ordo" submit "$tmp/w.jsonl" --ledger "http://127.0.0.1:$proxy_port" \
  --data "$tmp/q" --json > "$tmp/summary.json" 2> "$tmp/submit.err"
end=$(date +%s.%N)
kill -TERM "$proxy_pid"
wait "$proxy_pid" 2>/dev/null || true
/usr/bin/python3 - "$tmp/counts.json" "$start" "$end" "$block_ms" "$tmp/summary.json" <<'EOF'
import json, sys
counts = json.load(open(sys.argv[1]))
secs = float(sys.argv[3]) - float(sys.argv[2])
blocks = secs * 1000.0 / float(sys.argv[4])
status = sum(v for k, v in counts.items() if k.endswith("/batch_statuses"))
summary = json.load(open(sys.argv[5]))
print(json.dumps({"block_ms": int(sys.argv[4]), "seconds": round(secs, 2),
                  "blocks": round(blocks, 1), "requests": counts,
                  "status_per_s": round(status / secs, 2),
                  "status_per_block": round(status / blocks, 2),
                  "committed": summary.get("committed"),
                  "invalid": summary.get("invalid"),
                  "refused": summary.get("refused")}, sort_keys=True))
EOF
