#!/usr/bin/env python3
# serve_kill.py — the atomic-enqueue check of test_e2e.sh and
# test_e2e_pg.sh: `ordo serve` (journal only) killed with SIGKILL at random
# moments while a client posts ten-item requests; after each restart no
# request is partly journaled, every acknowledged one is whole, and
# re-sending any request is safe (200 "already enqueued", or 202 for what
# was lost). DATA is a directory or a PostgreSQL URL; with PG_URL and PSQL
# each restart first waits for the killed server's sessions to end.
import json, os, random, signal, subprocess, sys, threading, time
import urllib.error, urllib.request

# usage: serve_kill.py ORDO DATA KILLS SECONDS [PG_URL PSQL]
ordo, data = sys.argv[1], sys.argv[2]
max_kills, seconds = int(sys.argv[3]), float(sys.argv[4])
pg_url, psql = (sys.argv[5], sys.argv[6]) if len(sys.argv) > 6 else (None, None)
rng = random.Random(13)

def gone(pid):
    """On PostgreSQL, wait until the server has no session of the dead pid
    (its lock on the queue); a SQLite flock goes with the process."""
    if pg_url is None:
        return
    end = time.time() + 30
    q = ("SELECT count(*) FROM pg_stat_activity WHERE application_name = "
         "'ordo pid %d'" % pid)
    while time.time() < end:
        out = subprocess.run([psql, "-X", "-At", pg_url, "-c", q],
                             capture_output=True, text=True).stdout.strip()
        if out == "0":
            return
        time.sleep(0.05)
    raise AssertionError("the server kept the sessions of killed pid %d" % pid)

def start():
    p = subprocess.Popen([ordo, "serve", "--port", "0", "--data", data],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    line = p.stdout.readline()
    assert line.startswith("listening on "), (line, p.stderr.read())
    return p, line.split()[-1]

def call(url, method, path, body=None):
    req = urllib.request.Request(url + path, method=method,
                                 data=None if body is None
                                 else json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

def request(n):
    return [{"id": "r%d-%d" % (n, i), "service": "s%d" % (n % 3),
             "writes": ["k%d" % i], "reads": ["r%d" % n]} for i in range(10)]

sent, acked, nxt = [], set(), [0]

def client(url, stop):
    while not stop.is_set():
        n = nxt[0]
        nxt[0] += 1
        sent.append(n)
        try:
            st, _ = call(url, "POST", "/v1/batches", request(n))
        except Exception:
            return  # the server is gone
        if st == 202:
            acked.add(n)

deadline = time.time() + seconds
kills = 0
while kills < max_kills and time.time() < deadline:
    p, url = start()
    stop = threading.Event()
    t = threading.Thread(target=client, args=(url, stop))
    t.start()
    time.sleep(rng.uniform(0.05, 0.4))
    p.send_signal(signal.SIGKILL)
    p.wait()
    stop.set()
    t.join()
    kills += 1
    gone(p.pid)

p, url = start()
partial, whole, absent = 0, 0, 0
for n in sent:
    have = sum(call(url, "GET", "/v1/batches/r%d-%d" % (n, i))[0] == 200
               for i in range(10))
    if have == 10:
        whole += 1
    elif have == 0:
        absent += 1
        assert n not in acked, "acknowledged request %d lost" % n
    else:
        partial += 1
assert partial == 0, "%d partly journaled requests" % partial
assert acked, "no request was acknowledged"
# Re-sending is safe: whole ones answer 200, lost ones are enqueued.
for n in sent[-5:] + sorted(acked)[:5]:
    st, body = call(url, "POST", "/v1/batches", request(n))
    assert st in (200, 202), (n, st, body)
    res = {b["result"] for b in body["batches"]}
    assert (st == 200) == (res == {"already enqueued"}), (st, res)
st, _ = call(url, "POST", "/v1/batches",
             [dict(request(sent[0])[0], writes=["other"])])
assert st == 409, st
p.send_signal(signal.SIGTERM)
p.wait()
print("ok   atomic enqueue%s: %d SIGKILLs, %d requests (%d acknowledged): "
      "%d whole, %d absent, 0 partial" %
      (" (PostgreSQL)" if pg_url else "", kills, len(sent), len(acked), whole,
       absent))
