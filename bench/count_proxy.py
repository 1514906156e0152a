#!/usr/bin/python3
"""count_proxy.py — a loopback HTTP/1.1 proxy that counts the requests a
client sends to a ledger, by method and path, for measuring how many status
requests ordo makes per block (bench/status_requests.sh).

usage: count_proxy.py UPSTREAM_PORT COUNTS_FILE

Listens on an ephemeral 127.0.0.1 port (printed as the first stdout line,
"listening on http://127.0.0.1:PORT") and relays bytes both ways. Request
lines are recognised at the start of each request on a connection (Content-
Length bodies are skipped), so keep-alive connections count right. On
SIGTERM it writes {"POST /batches": n, "GET /batch_statuses": n, ...} to
COUNTS_FILE and exits. It never connects anywhere but 127.0.0.1.
"""
import json
import signal
import socket
import sys
import threading

counts = {}
lock = threading.Lock()


def count(line):
    parts = line.split(b" ")
    if len(parts) < 2:
        return
    path = parts[1].split(b"?")[0].decode("latin-1")
    key = parts[0].decode("latin-1") + " " + path
    with lock:
        counts[key] = counts.get(key, 0) + 1


def client_to_upstream(c, u):
    buf = b""
    body_left = 0
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            u.sendall(data)
            buf += data
            while True:
                if body_left > 0:
                    take = min(body_left, len(buf))
                    buf = buf[take:]
                    body_left -= take
                    if body_left > 0:
                        break
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end]
                buf = buf[end + 4:]
                lines = head.split(b"\r\n")
                count(lines[0])
                for h in lines[1:]:
                    if h.lower().startswith(b"content-length:"):
                        body_left = int(h.split(b":", 1)[1].strip())
    except OSError:
        pass
    finally:
        try:
            u.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def upstream_to_client(u, c):
    try:
        while True:
            data = u.recv(65536)
            if not data:
                break
            c.sendall(data)
    except OSError:
        pass
    finally:
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def main():
    upstream = int(sys.argv[1])
    out = sys.argv[2]
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    print("listening on http://127.0.0.1:%d" % srv.getsockname()[1], flush=True)

    def stop(*_):
        with lock:
            with open(out, "w") as f:
                json.dump(counts, f, sort_keys=True)
        sys.exit(0)

    signal.signal(signal.SIGTERM, stop)
    while True:
        c, _ = srv.accept()
        u = socket.create_connection(("127.0.0.1", upstream))
        threading.Thread(target=client_to_upstream, args=(c, u), daemon=True).start()
        threading.Thread(target=upstream_to_client, args=(u, c), daemon=True).start()


if __name__ == "__main__":
    main()
