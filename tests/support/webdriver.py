#!/usr/bin/python3
# webdriver.py — a minimal W3C WebDriver client for the browser test
# (tests/test_ui.sh): Debian's python3 standard library only (urllib,
# json), speaking to /usr/bin/chromedriver, which drives headless
# /usr/bin/chromium. Just what the test needs: navigate, find, click, type,
# read, run scripts, wait on a condition, screenshots, the browser's
# console log. chromedriver is always killed at exit (atexit, and on
# SIGTERM/SIGINT through the caller's handler calling quit()).
import atexit, base64, json, os, socket, subprocess, tempfile, time
import urllib.error, urllib.request

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C element key


class WebDriverError(Exception):
    """An error answer of the WebDriver protocol ("error", "message")."""

    def __init__(self, status, error, message):
        Exception.__init__(self, "%s (%s): %s" % (error, status, message))
        self.status, self.error, self.message = status, error, message


class Timeout(AssertionError):
    pass


def available():
    """Both programs are installed and executable."""
    return all(os.access(p, os.X_OK) for p in (CHROMIUM, CHROMEDRIVER))


def _free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout=30, interval=0.2, what=None):
    """Poll pred() until it returns a true value; return that value.
    Exceptions of pred (an element not there yet, a stale one, a failed
    assertion) count as false; the last one is named in the Timeout."""
    end = time.time() + timeout
    last = None
    while True:
        try:
            v = pred()
            if v:
                return v
            last = None
        except (WebDriverError, KeyError, ValueError, TypeError, IndexError,
                AssertionError, OSError) as e:
            last = e
        if time.time() >= end:
            raise Timeout("timed out after %ss waiting for %s%s" % (
                timeout, what or getattr(pred, "__name__", "condition"),
                "" if last is None else " (last error: %s)" % last))
        time.sleep(interval)


class Element:
    def __init__(self, drv, eid):
        self.drv, self.id = drv, eid

    def _p(self, tail=""):
        return "/element/%s%s" % (self.id, tail)

    def click(self):
        self.drv._cmd("POST", self._p("/click"), {})

    def clear(self):
        self.drv._cmd("POST", self._p("/clear"), {})

    def send_keys(self, text):
        self.drv._cmd("POST", self._p("/value"), {"text": text})

    @property
    def text(self):
        return self.drv._cmd("GET", self._p("/text"))

    def attribute(self, name):
        return self.drv._cmd("GET", self._p("/attribute/%s" % name))

    def prop(self, name):
        return self.drv._cmd("GET", self._p("/property/%s" % name))

    def displayed(self):
        return self.drv._cmd("GET", self._p("/displayed"))

    def find(self, css):
        v = self.drv._cmd("POST", self._p("/element"),
                          {"using": "css selector", "value": css})
        return Element(self.drv, v[ELEMENT])

    def find_all(self, css):
        v = self.drv._cmd("POST", self._p("/elements"),
                          {"using": "css selector", "value": css})
        return [Element(self.drv, e[ELEMENT]) for e in v]

    def screenshot(self, path):
        png = base64.b64decode(self.drv._cmd("GET", self._p("/screenshot")))
        with open(path, "wb") as f:
            f.write(png)


class Driver:
    """One chromedriver process and one session in it."""

    def __init__(self, headless=True, window="1400,2000", extra_args=(),
                 log_path=None, start_timeout=60, timeout=120):
        self.proc = None
        self.session = None
        self.timeout = timeout  # seconds, one HTTP call to chromedriver
        self.log_path = log_path or os.path.join(
            tempfile.gettempdir(), "chromedriver-%d.log" % os.getpid())
        atexit.register(self.quit)
        last = None
        for _ in range(3):  # a port taken between probe and bind: again
            self.port = _free_port()
            self.base = "http://127.0.0.1:%d" % self.port
            self.proc = subprocess.Popen(
                [CHROMEDRIVER, "--port=%d" % self.port,
                 "--log-path=%s" % self.log_path],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            try:
                self._wait_ready(start_timeout)
                break
            except Exception as e:  # noqa: BLE001
                last = e
                self._kill()
        else:
            raise RuntimeError("chromedriver did not start: %s" % last)
        args = ["--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=%s" % window,
                "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
                "--password-store=basic", "--use-mock-keychain"]
        if not headless:
            args = [a for a in args if not a.startswith("--headless")]
        self.profile = tempfile.mkdtemp(prefix="ordo-chromium-")
        args.append("--user-data-dir=%s" % self.profile)
        args.extend(extra_args)
        caps = {"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "pageLoadStrategy": "normal",
            "unhandledPromptBehavior": "dismiss",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "goog:loggingPrefs": {"browser": "ALL"},
            "timeouts": {"script": 60000, "pageLoad": 120000,
                         "implicit": 0},
        }}}
        v = self._http("POST", "/session", caps, timeout=start_timeout * 2)
        self.session = v["sessionId"]
        self.capabilities = v.get("capabilities", {})

    # -- transport ---------------------------------------------------------
    def _wait_ready(self, timeout):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError("chromedriver exited %s" % self.proc.returncode)
            try:
                v = self._http("GET", "/status", timeout=5)
                if v.get("ready"):
                    return
            except (OSError, WebDriverError):
                pass
            time.sleep(0.1)
        raise RuntimeError("chromedriver not ready after %ds" % timeout)

    def _http(self, method, path, body=None, timeout=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.base + path, data=data, method=method,
            headers={"Content-Type": "application/json; charset=utf-8"})
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw, status = e.read(), e.code
        try:
            v = json.loads(raw.decode("utf-8") or "null")
        except ValueError:
            raise WebDriverError(status, "bad answer", raw[:200])
        value = v.get("value") if isinstance(v, dict) else None
        if status >= 400:
            value = value or {}
            raise WebDriverError(status, value.get("error", "?"),
                                 value.get("message", "")[:2000])
        return value

    def _cmd(self, method, path, body=None, timeout=None):
        if self.session is None:
            raise RuntimeError("no session")
        return self._http(method, "/session/%s%s" % (self.session, path),
                          body, timeout)

    # -- browsing ----------------------------------------------------------
    def get(self, url):
        self._cmd("POST", "/url", {"url": url})

    @property
    def url(self):
        return self._cmd("GET", "/url")

    @property
    def title(self):
        return self._cmd("GET", "/title")

    def refresh(self):
        self._cmd("POST", "/refresh", {})

    def find(self, css):
        v = self._cmd("POST", "/element", {"using": "css selector",
                                            "value": css})
        return Element(self, v[ELEMENT])

    def find_all(self, css):
        v = self._cmd("POST", "/elements", {"using": "css selector",
                                             "value": css})
        return [Element(self, e[ELEMENT]) for e in v]

    def exists(self, css):
        return len(self.find_all(css)) > 0

    def _args(self, args):
        return [{ELEMENT: a.id} if isinstance(a, Element) else a for a in args]

    def execute(self, script, *args):
        """Run script (a function body; arguments[i]) and return its value."""
        return self._cmd("POST", "/execute/sync",
                         {"script": script, "args": self._args(args)})

    def execute_async(self, script, *args):
        """Run script; it ends by calling arguments[arguments.length-1](v)."""
        return self._cmd("POST", "/execute/async",
                         {"script": script, "args": self._args(args)})

    def wait_for(self, pred, timeout=30, interval=0.2, what=None):
        return wait_for(pred, timeout, interval, what)

    def screenshot(self, path):
        png = base64.b64decode(self._cmd("GET", "/screenshot"))
        with open(path, "wb") as f:
            f.write(png)
        return path

    def cdp(self, cmd, params=None):
        """A Chrome DevTools Protocol command (chromedriver's extension)."""
        return self._cmd("POST", "/goog/cdp/execute",
                         {"cmd": cmd, "params": params or {}})

    def console_log(self):
        """The browser console entries since the last call (chromedriver
        keeps them per session and hands each out once): a list of
        {"level": "SEVERE"|"WARNING"|"INFO"|..., "message", "source",
        "timestamp"}."""
        return self._cmd("POST", "/se/log", {"type": "browser"}) or []

    def new_window(self):
        """A new tab (own sessionStorage); switch to it; return its handle."""
        v = self._cmd("POST", "/window/new", {"type": "tab"})
        self._cmd("POST", "/window", {"handle": v["handle"]})
        return v["handle"]

    def window_handle(self):
        return self._cmd("GET", "/window")

    def switch_to(self, handle):
        self._cmd("POST", "/window", {"handle": handle})

    def close_window(self):
        return self._cmd("DELETE", "/window")

    # -- the end -----------------------------------------------------------
    def _kill(self):
        p, self.proc = self.proc, None
        if p is None:
            return
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def quit(self):
        """End the session (chromium goes) and chromedriver; idempotent."""
        if self.session is not None:
            try:
                self._http("DELETE", "/session/%s" % self.session, timeout=30)
            except Exception:  # noqa: BLE001 — best effort at exit
                pass
            self.session = None
        self._kill()
        prof = getattr(self, "profile", None)
        if prof:
            self.profile = None
            subprocess.call(["rm", "-rf", prof])
