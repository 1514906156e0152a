#!/usr/bin/python3
# ui_check.py — the browser half of tests/test_ui.sh: headless Chromium
# (through webdriver.py) against a running `ordo serve` whose ledger is an
# embedded `ordo ledger`, with a workload in flight for the whole run.
#
#   usage: ui_check.py URL TOKEN_FILE SHOT_DIR            (the test)
#          ui_check.py --scale URL TOKEN_FILE SHOT_DIR    (no ledger; timings)
#
# The test: the page loads with no console errors or warnings (for the
# whole run); the token leaves the URL; totals agree with /v1/dashboard,
# quiet services' rows exactly with /v1/services; filter, state select and
# sorting; a waiting batch's view names its blockers and a click on one
# opens it; halt/resume and cancel through the confirm dialog, checked with
# the API; a wrong token shows a 401 and no data. Screenshots: dashboard.png,
# batch.png, wrong-token.png in SHOT_DIR (and in $ORDO_UI_SCREENSHOT_DIR).
# Every wait is on a condition with a generous deadline (a loaded 2-core
# machine, ordo under ASan): nothing is decided by a fixed sleep.
import base64, hashlib, json, os, random, shutil, signal, subprocess, sys
import threading, time, traceback
import urllib.error, urllib.parse, urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import webdriver  # noqa: E402

T = float(os.environ.get("ORDO_UI_WAIT_S", "30"))  # one condition's deadline
SERVICES = 20
FIXED_N = 25
XSS = '<img src=x id=xss-probe>'

fails = []


def ok(name, detail=""):
    print("ok   %s%s" % (name, ": " + detail if detail else ""), flush=True)


def fail(name, detail=""):
    print("FAIL %s%s" % (name, ": " + detail if detail else ""), flush=True)
    fails.append(name)


# -- the API -------------------------------------------------------------
class Api:
    def __init__(self, url, token):
        self.url, self.token = url.rstrip("/"), token

    def call(self, method, path, body=None, token=None, timeout=60):
        data = None if body is None else json.dumps(body).encode()
        tok = self.token if token is None else token
        h = {"Content-Type": "application/json"}
        if tok:
            h["Authorization"] = "Bearer " + tok
        req = urllib.request.Request(self.url + path, data=data,
                                     method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, json.loads(r.read() or b"null")
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw or b"null")
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def get(self, path):
        st, v = self.call("GET", path)
        if st != 200:
            raise AssertionError("GET %s: %s %s" % (path, st, v))
        return v


def ns_address(key):
    """The ordo-rw family's state address of key (src/ledger/rw.c)."""
    ns = hashlib.sha512(b"ordo-rw").hexdigest()[:6]
    return ns + hashlib.sha512(key.encode()).hexdigest()[64:]


def item(bid, svc, reads, writes, deps=(), ledger=True):
    it = {"id": bid, "service": svc}
    if deps:
        it["deps"] = list(deps)
    if not ledger:  # journal only: the declared keys are the locks
        it["reads"], it["writes"] = list(reads), list(writes)
        return it
    payload = json.dumps({"reads": list(reads), "writes": list(writes)},
                         separators=(",", ":")).encode()
    it["transactions"] = [{
        "family_name": "ordo-rw", "family_version": "1.0",
        "inputs": sorted({ns_address(k) for k in list(reads) + list(writes)}),
        "outputs": sorted({ns_address(k) for k in writes}),
        "payload": base64.b64encode(payload).decode()}]
    return it


class Workload(threading.Thread):
    """Posts one batch to each of SERVICES services every period seconds
    until stopped; 30 % of them also read and write one of their service's
    4 shared keys (so some wait)."""

    def __init__(self, api, period=0.5):
        threading.Thread.__init__(self, daemon=True)
        self.api, self.period = api, period
        self.stop = threading.Event()
        self.rng = random.Random(5)
        self.posted = self.requests = 0
        self.bad = []

    def run(self):
        n = 0
        while not self.stop.is_set():
            items = []
            for s in range(SERVICES):
                svc = "w%02d" % s
                reads, writes = [], ["%s/own/%d" % (svc, n)]
                if self.rng.random() < 0.3:
                    k = "%s/shared/%d" % (svc, self.rng.randrange(4))
                    reads.append(k)
                    writes.append(k)
                items.append(item("w%d-%02d" % (n, s), svc, reads, writes))
            try:
                st, v = self.api.call("POST", "/v1/batches", items)
            except Exception as e:  # noqa: BLE001
                st, v = None, repr(e)
            self.requests += 1
            if st == 202:
                self.posted += len(items)
            elif len(self.bad) < 5:
                self.bad.append((st, str(v)[:300]))
            n += 1
            self.stop.wait(self.period)


# -- the browser ---------------------------------------------------------
class Page:
    """The driver plus the console entries seen so far."""

    def __init__(self, drv):
        self.d = drv
        self.console_bad = []
        self.allow = None  # predicate: an expected SEVERE/WARNING entry

    def drain(self):
        try:
            entries = self.d.console_log()
        except webdriver.WebDriverError as e:
            fail("read the browser console", str(e))
            return
        for e in entries:
            if e.get("level") not in ("SEVERE", "WARNING"):
                continue
            if self.allow is not None and self.allow(e):
                continue
            self.console_bad.append(e)

    def js(self, script, *args):
        return self.d.execute(script, *args)

    def wait(self, pred, what, timeout=T):
        return self.d.wait_for(pred, timeout=timeout, what=what)

    def click(self, css, timeout=T):
        """Find and click css, again while it is not there, stale, covered
        or not yet interactable (rows are redrawn every refresh)."""
        def go():
            self.d.find(css).click()
            return True
        self.wait(go, "a click on %s" % css, timeout)

    def typed(self, css, text, clear=True):
        def go():
            el = self.d.find(css)
            if clear:
                # Ctrl+A, release, Backspace: an 'input' event like a user's.
                el.send_keys("\ue009a\ue000\ue003")
            if text:
                el.send_keys(text)
            return True
        self.wait(go, "typing into %s" % css)

    def text(self, css):
        return self.js("var e = document.querySelector(arguments[0]);"
                       "return e ? e.textContent.trim() : null;", css)

    def shown(self, css):
        """Present, not hidden (attribute or CSS) and laid out."""
        return self.js(
            "var e = document.querySelector(arguments[0]); if (!e) return false;"
            "for (var n = e; n && n.nodeType === 1; n = n.parentElement) {"
            "  if (n.hidden) return false;"
            "  var s = getComputedStyle(n);"
            "  if (s.display === 'none' || s.visibility === 'hidden') return false; }"
            "var r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0;",
            css)

    def rows(self):
        """The services table as one snapshot: [{service, cells...}]."""
        return self.js(
            "return Array.prototype.map.call("
            "  document.querySelectorAll('#svc-body tr[data-service]'),"
            "  function (tr) { var o = {service: tr.getAttribute('data-service')};"
            "    Array.prototype.forEach.call(tr.querySelectorAll('td'), function (td) {"
            "      (td.className || '').split(/\\s+/).forEach(function (c) {"
            "        if (c.indexOf('c-') === 0) o[c.slice(2)] = td.textContent.trim(); });"
            "    });"
            "    o.halt = !!tr.querySelector('button.act-halt');"
            "    o.resume = !!tr.querySelector('button.act-resume');"
            "    return o; });")

    def row(self, name):
        for r in self.rows():
            if r["service"] == name:
                return r
        return None

    def stats(self):
        return self.js("return window.ordoStats ? JSON.parse(JSON.stringify("
                       "window.ordoStats)) : null;")

    def refreshed(self, n=2, timeout=T):
        """Wait until the page has refreshed n more times from now."""
        s = self.stats() or {}
        base = s.get("refreshes", 0)
        self.wait(lambda: (self.stats() or {}).get("refreshes", 0) >= base + n,
                  "%d more refreshes" % n, timeout)


def save_shot(pg, name, shot_dir, css=None):
    path = os.path.join(shot_dir, name)
    try:
        if css:
            pg.js("var e = document.querySelector(arguments[0]);"
                  "if (e) e.scrollIntoView({block: 'start'});", css)
            pg.d.find(css).screenshot(path)
        else:
            pg.js("window.scrollTo(0, 0);")
            pg.d.screenshot(path)
    except Exception as e:  # noqa: BLE001
        fail("screenshot %s" % name, str(e))
        return
    extra = os.environ.get("ORDO_UI_SCREENSHOT_DIR")
    if extra:
        os.makedirs(extra, exist_ok=True)
        shutil.copy(path, os.path.join(extra, name))
    ok("screenshot %s" % name, "%d bytes" % os.path.getsize(path))


def step(pg, shot_dir, name, fn):
    """Run one check; on an exception: FAIL, a screenshot, go on."""
    try:
        fn()
    except (AssertionError, webdriver.WebDriverError) as e:
        fail(name, str(e)[:1500])
        try:
            pg.d.screenshot(os.path.join(shot_dir, "fail-%s.png" % "".join(
                c if c.isalnum() else "-" for c in name)[:60]))
        except Exception:  # noqa: BLE001
            pass
    except Exception:  # noqa: BLE001 — a bug of this test: say where
        fail(name, traceback.format_exc()[-1500:])
    pg.drain()


def num(s):
    s = (s or "").replace(",", "").replace("\u202f", "").strip()
    return int(s) if s.lstrip("-").isdigit() else None


# -- the test ------------------------------------------------------------
def run_test(url, token, shot_dir):
    api = Api(url, token)

    # The fixed and stuck services first, before any browser.
    st, v = api.call("POST", "/v1/batches",
                     [item("fixed-%d" % i, "fixed", [], ["fixed/%d" % i])
                      for i in range(FIXED_N)])
    assert st == 202, ("enqueue fixed", st, v)
    a = "stuck/A"
    st, v = api.call("POST", "/v1/batches",
                     item("W1", "stuck", [], [a], deps=["ghost-never-enqueued"]))
    assert st == 202, ("enqueue W1", st, v)
    st, v = api.call("POST", "/v1/batches", item("W2", "stuck", [], [a]))
    assert st == 202, ("enqueue W2", st, v)
    st, v = api.call("POST", "/v1/batches", item("xss-1", XSS, [], ["xss/1"]))
    xss = st == 202
    if not xss:
        print("note: a service named %r refused (%s), escaping not checked"
              % (XSS, st), flush=True)
    wl = Workload(api)
    wl.start()

    def fixed_done():
        s = api.get("/v1/services/fixed")
        return s.get("committed") == FIXED_N and s
    try:
        webdriver.wait_for(fixed_done, timeout=3 * T,
                           what="service fixed: all committed")
        ok("API: service fixed committed %d" % FIXED_N)
    except AssertionError as e:
        fail("API: service fixed committed", str(e))

    def stuck():
        w1, w2 = api.get("/v1/batches/W1"), api.get("/v1/batches/W2")
        holders = [h.get("id") for w in w2.get("waits_on", [])
                   for h in w.get("holders", [])]
        deps = [w.get("what") for w in w1.get("waits_on", [])
                if w.get("kind") == "dep"]
        assert w1["state"] == "WAITING" and w2["state"] == "WAITING" and \
            "W1" in holders and "ghost-never-enqueued" in deps, \
            json.dumps([w1, w2])[:1500]
        return True
    try:
        webdriver.wait_for(stuck, timeout=T, what="W1 and W2 waiting")
        ok("API: W2 waits on W1, W1 on a dep never enqueued")
    except AssertionError as e:
        fail("API: W1/W2 waiting", str(e))

    t0 = time.time()
    drv = webdriver.Driver(log_path=os.path.join(shot_dir, "chromedriver.log"))
    pg = Page(drv)
    ok("chromium %s started" % drv.capabilities.get("browserVersion", "?"),
       "%.1f s" % (time.time() - t0))
    try:
        main_flow(pg, api, url, token, shot_dir, xss)
        wrong_token(pg, api, url, token, shot_dir)
    finally:
        wl.stop.set()
        wl.join(60)
        pg.drain()
        drv.quit()
    if wl.bad:
        fail("workload: every request 202", repr(wl.bad))
    else:
        ok("workload in flight", "%d batches in %d requests" %
           (wl.posted, wl.requests))
    if pg.console_bad:
        fail("no console errors or warnings",
             json.dumps(pg.console_bad, indent=1)[:3000])
    else:
        ok("no console errors or warnings for the whole run")


def main_flow(pg, api, url, token, shot_dir, xss):
    d = pg.d
    d.get("%s/ui#token=%s" % (url, urllib.parse.quote(token)))

    def load():
        pg.wait(lambda: (pg.text("#status") or "").startswith("live"),
                "#status 'live'")
        href = pg.js("return location.href;")
        assert "token" not in href and token not in href, href
        assert pg.js("return sessionStorage.getItem('ordo.token');") == token
        assert not pg.shown("#token-form"), "the token form is shown"
        assert not pg.shown("#error"), "#error: %s" % pg.text("#error")
        pg.refreshed(2)
        st = pg.stats()
        for k in ("refreshes", "lastRefreshMs", "maxRefreshMs",
                  "lastRenderMs", "maxRenderMs", "lastServerMs"):
            assert k in st, "window.ordoStats lacks %s: %s" % (k, st)
        ok("page loads, token leaves the URL, live", pg.text("#status"))
    step(pg, shot_dir, "page loads, token leaves the URL, live", load)

    def totals():
        want = 20 + 2 + (1 if xss else 0)
        pg.wait(lambda: api.get("/v1/dashboard")["totals"]["services"] == want,
                "API: %d services" % want)
        pg.wait(lambda: num(pg.text("#total-services")) == want,
                "#total-services == %d" % want)
        keys = ("enqueued", "committed", "invalid")
        # Counters only grow: the page's value lies between the API's
        # before and after one of the page's refreshes.
        def bounded():
            lo = api.get("/v1/dashboard")["totals"]
            pg.refreshed(2)  # the second one began after lo
            mid = {k: num(pg.text("#total-" + k)) for k in keys}
            hi = api.get("/v1/dashboard")["totals"]
            bad = [k for k in keys
                   if mid[k] is None or not lo[k] <= mid[k] <= hi[k]]
            assert not bad, "page %s not within API %s..%s" % (mid, lo, hi)
            return True
        pg.wait(bounded, "totals within the API's")
        for k in ("queued", "waiting", "in_flight"):
            v = num(pg.text("#total-" + k))
            assert v is not None and v >= 0, "#total-%s: %r" % (
                k, pg.text("#total-" + k))
        for k in ("#lat-p50", "#lat-p99"):
            assert "ms" in (pg.text(k) or ""), "%s: %r" % (k, pg.text(k))
        pg.wait(lambda: pg.text("#ledger-state") == "reachable",
                "#ledger-state 'reachable'")
        ok("totals agree with /v1/dashboard; ledger reachable")
    step(pg, shot_dir, "totals", totals)

    def charts():
        def drawn():
            # Read a copy (a canvas of the test's own, willReadFrequently):
            # getImageData on the page's canvases would make Chromium warn.
            n = pg.js(
                "return ['chart-rates','chart-depth','chart-latency'].map("
                "function (id) { var c = document.getElementById(id);"
                "  if (!c || !c.width || !c.height) return 0;"
                "  var t = document.createElement('canvas');"
                "  t.width = c.width; t.height = c.height;"
                "  var x = t.getContext('2d', {willReadFrequently: true});"
                "  x.drawImage(c, 0, 0);"
                "  var p = x.getImageData(0, 0, t.width, t.height).data;"
                "  var k = 0; for (var i = 3; i < p.length; i += 4) if (p[i]) k++;"
                "  return k; });")
            return all(n) and n
        counts = pg.wait(drawn, "three charts drawn")
        ok("charts drawn", "painted pixels %s" % counts)
    step(pg, shot_dir, "charts", charts)

    def quiet_rows():
        want = api.get("/v1/services?q=stuck")
        s = [x for x in want["services"] if x["name"] == "stuck"][0]
        assert s["depth"] == 2 and s["waiting"] == 2, s

        def stuck_row():
            r = pg.row("stuck")
            return r and num(r.get("depth")) == s["depth"] and \
                num(r.get("waiting")) == s["waiting"] and r
        pg.wait(stuck_row, "row stuck: depth %d waiting %d" %
                (s["depth"], s["waiting"]))

        def fixed_row():
            r = pg.row("fixed")
            return r and num(r.get("committed")) == FIXED_N and \
                num(r.get("depth")) == 0 and r
        pg.wait(fixed_row, "row fixed: committed %d depth 0" % FIXED_N)
        ok("quiet rows equal the API", "stuck depth 2 waiting 2, fixed "
           "committed %d" % FIXED_N)
        if xss:
            r = pg.wait(lambda: pg.row(XSS), "the row of service %r" % XSS)
            assert r.get("name") == XSS, r
            assert not pg.js("return !!document.getElementById('xss-probe');"), \
                "a service name became markup"
            ok("a service name with markup is shown as text")
    step(pg, shot_dir, "quiet services' rows", quiet_rows)

    def filt():
        pg.typed("#svc-filter", "stuck")
        pg.wait(lambda: [r["service"] for r in pg.rows()] == ["stuck"],
                "only the stuck row after the filter 'stuck'")
        pg.typed("#svc-filter", "")
        pg.wait(lambda: len(pg.rows()) >= 22, "every row back")
        pick_state(pg, "halted")
        pg.wait(lambda: pg.rows() == [], "no halted rows")
        pick_state(pg, "waiting")
        pg.wait(lambda: "stuck" in [r["service"] for r in pg.rows()] and
                "fixed" not in [r["service"] for r in pg.rows()],
                "waiting: stuck, not fixed")
        pick_state(pg, "all")
        pg.wait(lambda: len(pg.rows()) >= 22, "every row back")
        ok("filter by name and by state")
    step(pg, shot_dir, "filter", filt)

    def sorting():
        for key in ("name", "committed", "depth", "waiting"):
            for _ in range(2):
                before = pg.js("return document.querySelector("
                               "'th[data-sort=\"%s\"]').className;" % key)
                pg.click('th[data-sort="%s"]' % key)
                def sorted_ok():
                    cls = pg.js("return document.querySelector("
                                "'th[data-sort=\"%s\"]').className;" % key)
                    if cls == before:
                        return False
                    asc = "sorted-asc" in cls
                    if not asc and "sorted-desc" not in cls:
                        return False
                    rs = pg.rows()
                    vals = [r["name"] if key == "name" else num(r.get(key))
                            for r in rs]
                    if len(vals) < 22 or None in vals:
                        return False
                    return vals == sorted(vals, reverse=not asc) and cls
                pg.wait(sorted_ok, "rows sorted by %s" % key)
                others = pg.js("return document.querySelectorAll("
                               "'th.sorted-asc, th.sorted-desc').length;")
                assert others == 1, "%d sorted headers" % others
            ok("sort by %s both ways" % key)
        pg.click('th[data-sort="depth"]')  # back to depth
    step(pg, shot_dir, "sorting", sorting)

    def halt_resume():
        svc = "w07"
        row = 'tr[data-service="%s"]' % svc
        # The rows are redrawn (and re-sorted) every refresh: a click aimed
        # at one row's button could land on another's. Filtered to its one
        # row, the button stays where it is; the dialog must name it too.
        pg.typed("#svc-filter", svc)
        pg.wait(lambda: [r["service"] for r in pg.rows()] == [svc],
                "only the row of %s" % svc)

        def ask(cls, answer):
            def go():
                pg.click(row + " button." + cls)
                pg.wait(lambda: pg.shown("#confirm"), "#confirm shown")
                if svc not in (pg.text("#confirm-text") or ""):
                    pg.click("#confirm-cancel")
                    pg.wait(lambda: not pg.shown("#confirm"), "#confirm hidden")
                    raise AssertionError("#confirm-text %r does not name %s"
                                         % (pg.text("#confirm-text"), svc))
                pg.click(answer)
                pg.wait(lambda: not pg.shown("#confirm"), "#confirm hidden")
                return True
            pg.wait(go, "%s of %s confirmed with %s" % (cls, svc, answer))

        ask("act-halt", "#confirm-ok")
        pg.wait(lambda: pg.shown("#toast") and pg.text("#toast"), "#toast")
        pg.wait(lambda: api.get("/v1/services/" + svc)["halted"] is True,
                "API: %s halted" % svc)
        pg.wait(lambda: (pg.row(svc) or {}).get("resume") and
                (pg.row(svc) or {}).get("halted", "").startswith("halted"),
                "row %s halted with a resume button" % svc)
        ok("halt through the page", "row: %r" % pg.row(svc).get("halted"))
        # The dialog's cancel does nothing.
        ask("act-resume", "#confirm-cancel")
        assert api.get("/v1/services/" + svc)["halted"] is True, \
            "cancel of the dialog resumed it"
        pg.typed("#svc-filter", "")
        pick_state(pg, "halted")
        pg.wait(lambda: [r["service"] for r in pg.rows()] == [svc],
                "state halted: only %s" % svc)
        pick_state(pg, "all")
        pg.typed("#svc-filter", svc)
        pg.wait(lambda: [r["service"] for r in pg.rows()] == [svc],
                "only the row of %s" % svc)
        ask("act-resume", "#confirm-ok")
        pg.wait(lambda: api.get("/v1/services/" + svc)["halted"] is False,
                "API: %s resumed" % svc)
        pg.wait(lambda: (pg.row(svc) or {}).get("halt") and
                not (pg.row(svc) or {}).get("halted"),
                "row %s running with a halt button" % svc)
        pg.typed("#svc-filter", "")
        pg.wait(lambda: len(pg.rows()) >= 22, "every row back")
        others = [r["service"] for r in pg.rows() if r.get("resume")]
        assert not others, "halted by mistake: %s" % others
        ok("resume through the page (and the dialog's cancel does nothing)")
    step(pg, shot_dir, "halt and resume", halt_resume)

    def open_batch(bid):
        pg.typed("#batch-input", bid)
        pg.click("#batch-go")
        pg.wait(lambda: pg.shown("#batch-view") and
                pg.text("#batch-id") == bid, "the view of %s" % bid)

    def blockers():
        open_batch("W2")
        pg.wait(lambda: pg.text("#batch-state") == "WAITING", "W2 WAITING")
        assert pg.text("#batch-service") == "stuck", pg.text("#batch-service")
        pg.wait(lambda: pg.js("return !!document.querySelector("
                              "'#batch-blockers .blocker[data-batch=\"W1\"]');"),
                "#batch-blockers names W1")
        pg.wait(lambda: pg.js("return !!document.querySelector("
                              "'#batch-graph .blocker[data-batch=\"W1\"]');"),
                "#batch-graph names W1")
        assert pg.text("#batch-explain"), "no #batch-explain"
        ok("W2's view names W1 (list and graph)")
        save_shot(pg, "batch.png", shot_dir, css="section.batch")
        pg.click('#batch-blockers .blocker[data-batch="W1"]')
        pg.wait(lambda: pg.text("#batch-id") == "W1", "W1's view after a click")
        pg.wait(lambda: "ghost-never-enqueued" in (pg.text("#batch-blockers") or ""),
                "W1's view names ghost-never-enqueued")
        ok("a click on the blocker opens W1, which names its dep")
        open_batch("W2")
        pg.click('#batch-graph .blocker[data-batch="W1"]')
        pg.wait(lambda: pg.text("#batch-id") == "W1",
                "W1's view after a click in the graph")
        ok("a click in the graph opens W1")
    step(pg, shot_dir, "a waiting batch's blockers", blockers)

    def missing():
        prev = pg.allow
        pg.allow = lambda e: (e.get("source") == "network" and
                              "/v1/batches/no-such-batch" in e.get("message", "")
                              and "404" in e.get("message", ""))
        try:
            pg.typed("#batch-input", "no-such-batch")
            pg.click("#batch-go")
            pg.wait(lambda: "no batch with that id" in (
                (pg.text("#batch-view") or "") + " " + (pg.text("#error") or "")),
                "'no batch with that id'")
            pg.drain()
        finally:
            pg.allow = prev
        ok("a batch id that is not there: 'no batch with that id'")
    step(pg, shot_dir, "a missing batch", missing)

    def cancel():
        open_batch("W2")
        pg.wait(lambda: pg.shown("#batch-cancel"), "#batch-cancel shown")
        pg.click("#batch-cancel")
        pg.wait(lambda: pg.shown("#confirm"), "#confirm shown")
        pg.click("#confirm-ok")
        def gone():
            b = api.get("/v1/batches/W2")
            return b["state"] != "WAITING" and b
        b = pg.wait(gone, "API: W2 no longer WAITING")
        assert b["state"] == "INVALID" and "cancel" in (b.get("reason") or ""), b
        pg.wait(lambda: pg.text("#batch-state") == "INVALID",
                "the view says INVALID")
        assert not pg.shown("#batch-cancel"), "#batch-cancel still shown"
        assert api.get("/v1/batches/W1")["state"] == "WAITING"
        ok("cancel through the page", "W2 %s (%s)" % (b["state"], b.get("reason")))
    step(pg, shot_dir, "cancel", cancel)

    def final_shot():
        pick_state(pg, "all")
        pg.typed("#svc-filter", "")
        pg.wait(lambda: len(pg.rows()) >= 22, "every row")
        # A README picture: wait for a few samples of history on the charts.
        pg.wait(lambda: len(api.get("/v1/dashboard")["series"]) >= 20,
                "20 s of history", timeout=3 * T)
        # No focus ring, no toast in the picture.
        pg.js("if (document.activeElement) document.activeElement.blur();")
        pg.wait(lambda: not pg.shown("#toast"), "#toast gone")
        pg.refreshed(1)
        assert not pg.shown("#error"), "#error: %s" % pg.text("#error")
        save_shot(pg, "dashboard.png", shot_dir)
        print("ordoStats: %s" % json.dumps(pg.stats()), flush=True)
    step(pg, shot_dir, "dashboard screenshot", final_shot)


def pick_state(pg, value):
    pg.click('#svc-state option[value="%s"]' % value)
    pg.wait(lambda: pg.js("return document.getElementById('svc-state').value;")
            == value, "#svc-state = %s" % value)


def wrong_token(pg, api, url, token, shot_dir):
    d = pg.d
    pg.drain()
    main = d.window_handle()
    d.new_window()  # a tab of its own: its own sessionStorage
    prev = pg.allow
    pg.allow = lambda e: (e.get("source") == "network" and
                          "401" in e.get("message", ""))
    try:
        def wrong():
            d.get("%s/ui#token=wrong" % url)
            assert pg.js("return sessionStorage.getItem('ordo.token');") \
                in (None, "wrong")
            pg.wait(lambda: pg.shown("#error") and "401" in pg.text("#error"),
                    "#error shown, naming 401")
            pg.wait(lambda: pg.shown("#token-form"), "#token-form shown")
            for k in ("enqueued", "queued", "waiting", "in_flight",
                      "committed", "invalid", "services"):
                v = pg.text("#total-" + k)
                assert v in ("", "—", "-"), "#total-%s shows %r" % (k, v)
            assert pg.js("return document.querySelectorAll("
                         "'#svc-body tr').length;") == 0, "rows shown"
            assert "token" not in pg.js("return location.href;")
            ok("a wrong token: 401 in #error, the token form, no data",
               repr(pg.text("#error"))[:200])
            save_shot(pg, "wrong-token.png", shot_dir)
            # The form with the right token: data appears.
            pg.typed("#token-input", token)
            pg.click("#token-submit")
            pg.wait(lambda: len(pg.rows()) >= 22, "rows after the right token")
            pg.wait(lambda: not pg.shown("#error") and
                    not pg.shown("#token-form"), "#error and form hidden")
            ok("the token form with the right token shows the data")
        step(pg, shot_dir, "a wrong token", wrong)
        d.close_window()
        d.switch_to(main)
        pg.drain()
    finally:
        pg.allow = prev


# -- scale mode ------------------------------------------------------------
def scale(url, token, shot_dir, per=10, chunk=1000):
    nsvc = int(os.environ.get("ORDO_UI_SCALE_SERVICES", "10000"))
    api = Api(url, token)
    rng = random.Random(9)
    items, t0 = [], time.time()
    posted, post_ms = 0, []
    for s in range(nsvc):
        svc = "svc%05d" % s
        for i in range(per):
            w = ["%s/own/%d" % (svc, i)]
            r = []
            if rng.random() < 0.1:
                w.append("%s/shared" % svc)
                r.append("%s/shared" % svc)
            items.append(item("%s-%d" % (svc, i), svc, r, w, ledger=False))
            if len(items) == chunk:
                t1 = time.time()
                st, v = api.call("POST", "/v1/batches", items, timeout=300)
                post_ms.append((time.time() - t1) * 1000)
                assert st == 202, (st, str(v)[:300])
                posted += len(items)
                items = []
    if items:
        st, v = api.call("POST", "/v1/batches", items, timeout=300)
        assert st == 202, (st, str(v)[:300])
        posted += len(items)
    enq_s = time.time() - t0
    print("enqueued %d batches for %d services in %.1f s (POST of %d: avg "
          "%.0f ms, max %.0f ms)" % (posted, nsvc, enq_s, chunk,
                                     sum(post_ms) / len(post_ms),
                                     max(post_ms)), flush=True)

    def timed(path):
        t = time.time()
        v = api.get(path)
        ms = (time.time() - t) * 1000
        c = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{time_total}",
             "-H", "Authorization: Bearer " + token, url + path],
            capture_output=True, text=True)
        return v, ms, float(c.stdout or "nan") * 1000

    rowsd = []
    for path in ("/v1/dashboard", "/v1/services?limit=50",
                 "/v1/services?limit=50&sort=name&order=asc",
                 "/v1/services?limit=50&sort=committed",
                 "/v1/services?limit=50&q=svc0999",
                 "/v1/services?limit=50&filter=waiting",
                 "/v1/services?limit=500&offset=9500"):
        v, ms, cms = timed(path)
        rowsd.append((path, v.get("server_ms"), ms, cms))

    drv = webdriver.Driver(log_path=os.path.join(shot_dir, "chromedriver.log"))
    pg = Page(drv)
    rtts = []

    def rtt():
        t = time.time()
        pg.js("return 1;")
        rtts.append((time.time() - t) * 1000)
    try:
        drv.get("%s/ui#token=%s" % (url, urllib.parse.quote(token)))
        pg.wait(lambda: (pg.text("#status") or "").startswith("live"),
                "#status 'live'", timeout=4 * T)
        pg.wait(lambda: num(pg.text("#total-services")) == nsvc,
                "#total-services == %d" % nsvc, timeout=4 * T)
        end = time.time() + 30
        while time.time() < end:
            rtt()
            time.sleep(0.5)
        sorts = []
        for key in ("name", "depth", "queued", "waiting", "in_flight",
                    "committed", "invalid", "halted"):
            t = time.time()
            before = pg.js("return document.querySelector("
                           "'th[data-sort=\"%s\"]').className;" % key)
            pg.click('th[data-sort="%s"]' % key)
            pg.wait(lambda: pg.js("return document.querySelector("
                                  "'th[data-sort=\"%s\"]').className;" % key)
                    != before and len(pg.rows()) == 50, "sorted by " + key)
            sorts.append((key, (time.time() - t) * 1000))
            rtt()
        pages, t = 0, time.time()
        page_ms = []
        while pg.js("return !document.getElementById('svc-next').disabled;"):
            before = pg.text("#svc-page")
            t1 = time.time()
            pg.click("#svc-next")
            pg.wait(lambda: pg.text("#svc-page") != before, "next page")
            page_ms.append((time.time() - t1) * 1000)
            pages += 1
            if pages % 20 == 0:
                rtt()
        last = pg.text("#svc-page")
        rtt()
        save_shot(pg, "scale.png", shot_dir)
        st = pg.stats()
        pg.drain()
    finally:
        drv.quit()
    print("\n%-48s %10s %10s %10s" % ("endpoint", "server_ms", "urllib_ms",
                                      "curl_ms"))
    for path, sms, ms, cms in rowsd:
        print("%-48s %10s %10.1f %10.1f" % (path, sms, ms, cms))
    print("\npage (window.ordoStats after the run):")
    for k in sorted(st or {}):
        print("  %-16s %s" % (k, st[k]))
    print("\nsort clicks (click to sorted rows shown, ms):")
    for key, ms in sorts:
        print("  %-10s %8.0f" % (key, ms))
    print("paging: %d clicks to the last page (%s), avg %.0f ms, max %.0f ms"
          % (pages, last, sum(page_ms) / max(1, len(page_ms)),
             max(page_ms or [0])))
    print("execute_script round trip: %d samples, avg %.0f ms, max %.0f ms"
          % (len(rtts), sum(rtts) / len(rtts), max(rtts)), flush=True)
    if max(rtts) >= 2000:
        fail("the page stays responsive", "a round trip of %.0f ms" % max(rtts))
    else:
        ok("the page stays responsive", "max round trip %.0f ms" % max(rtts))
    if pg.console_bad:
        fail("no console errors or warnings", json.dumps(pg.console_bad)[:2000])


def main():
    args = sys.argv[1:]
    scale_mode = bool(args) and args[0] == "--scale"
    if scale_mode:
        args = args[1:]
    url, token_file, shot_dir = args
    with open(token_file) as f:
        token = f.read().strip()
    os.makedirs(shot_dir, exist_ok=True)

    def on_term(sig, frame):
        raise SystemExit(128 + sig)
    signal.signal(signal.SIGTERM, on_term)
    try:
        if scale_mode:
            scale(url, token, shot_dir)
        else:
            run_test(url, token, shot_dir)
    except (AssertionError, webdriver.WebDriverError, RuntimeError) as e:
        fail("setup", str(e)[:2000])
    if fails:
        print("%d check(s) failed: %s" % (len(fails), ", ".join(fails)))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
