"""Op: one ordo_op (a future) seen from Python.

An Op is what every ``*_async`` method returns. It is

- blocking: ``op.result(timeout=None)`` waits (ordo_op_wait, the GIL
  released) and returns the result or raises OrdoError;
- awaitable: ``await op`` registers the op's eventfd (ordo_op_fd) with the
  running asyncio loop (``loop.add_reader``) and resumes when it is readable,
  so the event loop never blocks; cancelling the awaiting task asks ordo to
  cancel the op;
- cancellable: ``op.cancel()`` (ordo_op_cancel).

Memory: the C op is released (ordo_op_release) as soon as the op has
finished and its result has been copied into Python, whichever way it was
waited for; ``close()`` (or leaving a ``with`` block, or garbage
collection) releases an op that is dropped before it finishes, which is
safe: ordo finishes it and frees it then. Any thread may use an Op; each
C call on it holds its own reference (ordo_op_retain), so a release on one
thread never pulls the op from under a wait on another.
"""

import asyncio
import ctypes
import json
import threading

from . import _lib
from .errors import E_BUSY, E_PENDING, E_TIMEOUT, error_for

__all__ = ["Op"]

# The longest single ordo_op_wait of a wait without a limit, in ms: a
# blocking wait wakes this often so that Ctrl-C (KeyboardInterrupt) works.
_WAIT_SLICE_MS = 200


def _decode_json(text):
    return None if text is None else json.loads(text)


class Op:
    """A pending or finished ordo operation. See the module docstring."""

    def __init__(self, ptr, transform=None, keep=None, what="op"):
        if not ptr:
            raise MemoryError("ordo returned no op for %s (out of memory)"
                              % what)
        self._lock = threading.Lock()
        self._ptr = ptr           # our reference; None once released
        self._collected = False   # status/result copied into Python
        self._status = E_PENDING
        self._message = ""
        self._json = None         # the JSON result text, or None
        self._bytes = None        # the binary result, or None
        self._transform = transform
        self._keep = keep         # Python objects the call borrowed
        self._afut = None         # [future, unregister, awaiters] on a loop
        self._what = what

    def __repr__(self):
        state = "pending" if not self._collected else (
            "ok" if self._status == 0 else "failed %d" % self._status)
        return "<ordo.Op %s %s>" % (self._what, state)

    # -- references ------------------------------------------------------

    def _borrow(self):
        """A new reference to the C op, or None once it is released."""
        with self._lock:
            if self._ptr is None:
                return None
            return _lib.lib().ordo_op_retain(self._ptr)

    def _collect_locked(self, ptr):
        lib = _lib.lib()
        st = lib.ordo_op_status(ptr)
        if st == E_PENDING:
            return False
        msg = lib.ordo_op_message(ptr)
        res = lib.ordo_op_result(ptr)
        data = ctypes.c_void_p()
        n = ctypes.c_size_t()
        if lib.ordo_op_result_bytes(ptr, ctypes.byref(data),
                                    ctypes.byref(n)) == 0:
            self._bytes = ctypes.string_at(data, n.value) if n.value else b""
        self._status = st
        self._message = msg.decode(errors="replace") if msg else ""
        self._json = res.decode() if res is not None else None
        self._collected = True
        self._keep = None
        # Every C call holds its own reference, so ours can go now.
        lib.ordo_op_release(self._ptr)
        self._ptr = None
        return True

    def _collect(self):
        """Copy the outcome into Python if the op has finished; True then."""
        with self._lock:
            if self._collected:
                return True
            if self._ptr is None:
                return False
            return self._collect_locked(self._ptr)

    def close(self):
        """Drop the C op. Safe before it finishes (ordo then finishes and
        frees it); the outcome stays readable if it had been collected."""
        with self._lock:
            if self._ptr is not None and not self._collected:
                ptr, self._ptr = self._ptr, None
                self._keep = None
                _lib.lib().ordo_op_release(ptr)

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- state -----------------------------------------------------------

    def done(self):
        """True once the op has finished (successfully or not)."""
        return self._collect()

    @property
    def status(self):
        """ORDO_E_PENDING (105) while running, then the final code (0: ok)."""
        self._collect()
        return self._status

    @property
    def message(self):
        """The op's error message ("" on success or while pending)."""
        self._collect()
        return self._message

    def cancel(self):
        """Ask ordo to stop the op (ordo_op_cancel). True if the request
        was taken (a queued op ends CANCELED at once; a running stage
        stops at its next checkpoint); False if it had already finished."""
        ptr = self._borrow()
        if ptr is None:
            return False
        lib = _lib.lib()
        try:
            rc = lib.ordo_op_cancel(ptr)
        finally:
            lib.ordo_op_release(ptr)
        return rc in (0, E_BUSY)

    # -- blocking --------------------------------------------------------

    def wait(self, timeout=None):
        """Block until the op finishes or timeout seconds pass (None: no
        limit). Returns True if it finished. The GIL is released."""
        if self._collect():
            return True
        ptr = self._borrow()
        if ptr is None:
            raise RuntimeError("op was closed before it finished")
        lib = _lib.lib()
        try:
            if timeout is None:
                while lib.ordo_op_wait(ptr, _WAIT_SLICE_MS) == E_TIMEOUT and \
                        lib.ordo_op_status(ptr) == E_PENDING:
                    pass
            else:
                ms = max(0, int(timeout * 1000))
                lib.ordo_op_wait(ptr, min(ms, 2**31 - 1))
        finally:
            lib.ordo_op_release(ptr)
        return self._collect()

    def _outcome(self):
        if self._status != 0:
            raise error_for(self._status, self._message or None)
        value = _decode_json(self._json)
        if self._transform is not None:
            return self._transform(value, self._bytes)
        return value

    def result(self, timeout=None):
        """Wait (as wait()) and return the result: the decoded JSON, or
        what the call documents (bytes, bool, int, str). Raises OrdoError
        if the op failed, TimeoutError if timeout passes first. A
        KeyboardInterrupt during the wait cancels the op."""
        try:
            if not self.wait(timeout):
                raise TimeoutError("%s did not finish in %s s"
                                   % (self._what, timeout))
        except KeyboardInterrupt:
            self.cancel()
            raise
        return self._outcome()

    def result_json(self, timeout=None):
        """The raw JSON text of the result (None if none); raises as
        result()."""
        self.result(timeout)
        return self._json

    def result_bytes(self, timeout=None):
        """The binary result (ordo_op_result_bytes) or None; raises as
        result()."""
        self.result(timeout)
        return self._bytes

    # -- asyncio ---------------------------------------------------------

    def _register(self, loop):
        """Watch the op's eventfd on loop. Returns (future set once the op
        has finished, unregister function for when nobody awaits any
        more)."""
        fut = loop.create_future()
        ptr = self._borrow()  # held while the fd is registered
        if ptr is None:
            fut.set_result(None)
            return fut, lambda: None
        lib = _lib.lib()
        fd = lib.ordo_op_fd(ptr)
        if fd < 0:
            # No eventfd: wait on a worker thread instead (never the loop).
            def blocking_wait():
                try:
                    while lib.ordo_op_wait(ptr, _WAIT_SLICE_MS) == E_TIMEOUT \
                            and lib.ordo_op_status(ptr) == E_PENDING:
                        pass
                finally:
                    lib.ordo_op_release(ptr)
            w = loop.run_in_executor(None, blocking_wait)
            w.add_done_callback(lambda _f: fut.done() or fut.set_result(None))
            return fut, lambda: None

        registered = [True]

        def unregister():
            # remove_reader first: the fd stays open while we hold ptr
            if registered[0]:
                registered[0] = False
                loop.remove_reader(fd)
                lib.ordo_op_release(ptr)

        def on_readable():
            if lib.ordo_op_status(ptr) == E_PENDING:
                return  # not finished: wait for the real signal
            self._collect()
            unregister()
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(fd, on_readable)
        return fut, unregister

    async def _await(self):
        if not self._collect():
            loop = asyncio.get_running_loop()
            with self._lock:
                reg = self._afut
                if reg is not None and (reg[0].get_loop() is not loop or
                                        reg[0].cancelled()):
                    reg = None
            if reg is None:
                fut, unregister = self._register(loop)
                reg = [fut, unregister, 0]  # future, unregister, awaiters
                with self._lock:
                    self._afut = reg
            reg[2] += 1
            try:
                # shield: one awaiter cancelled must not strand the others
                await asyncio.shield(reg[0])
            except asyncio.CancelledError:
                self.cancel()
                reg[2] -= 1
                if reg[2] == 0 and not reg[0].done():
                    # nobody waits any more: stop watching, so that a loop
                    # that ends now leaves no reference behind
                    reg[1]()
                    reg[0].cancel()
                raise
            reg[2] -= 1
            self._collect()
        return self._outcome()

    def __await__(self):
        return self._await().__await__()
