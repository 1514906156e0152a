#!/usr/bin/python3
"""ledger_load.py PORT PID SECONDS CLIENTS — the embedded ledger node's
resident memory under many clients: CLIENTS threads on 127.0.0.1 each open
a connection, send 20 batch-status requests on it (GET with 15 ids, or POST
with 900), close it, and start again, for SECONDS; the node's VmRSS (process
PID) is sampled every second. Prints one JSON line: requests answered, RSS
before, the peak, every sample and the RSS two seconds after the load.
Only 127.0.0.1 is contacted; it stops by itself."""
import http.client
import json
import sys
import threading
import time

port, pid = int(sys.argv[1]), int(sys.argv[2])
secs, n = float(sys.argv[3]), int(sys.argv[4])
ids = ["%0128x" % i for i in range(15)]
stop = time.time() + secs
answered = [0]


def rss():
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return -1.0


def client(k):
    while time.time() < stop:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            for _ in range(20):
                if k % 2:
                    c.request("GET", "/batch_statuses?id=" + ",".join(ids))
                else:
                    c.request("POST", "/batch_statuses",
                              body=json.dumps(ids * 60),
                              headers={"Content-Type": "application/json"})
                c.getresponse().read()
                answered[0] += 1
            c.close()
        except (OSError, http.client.HTTPException):
            time.sleep(0.05)  # refused (per-address cap) or cut: again


before = rss()
threads = [threading.Thread(target=client, args=(k,), daemon=True)
           for k in range(n)]
for t in threads:
    t.start()
peak, samples = before, []
while time.time() < stop:
    time.sleep(1)
    r = rss()
    peak = max(peak, r)
    samples.append(round(r, 1))
for t in threads:
    t.join(timeout=6)
time.sleep(2)
print(json.dumps({"clients": n, "seconds": secs, "requests": answered[0],
                  "rss_before_mib": round(before, 1),
                  "rss_peak_mib": round(peak, 1),
                  "rss_after_mib": round(rss(), 1), "samples": samples}))
