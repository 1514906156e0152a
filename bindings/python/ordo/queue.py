"""Queue: the durable submission queue (ordo_journal_*_json).

A Queue is a journal opened on a Context. ``enqueue`` is an op like any
command (``enqueue`` blocks until the batch is durable, ``enqueue_async``
returns an awaitable Op); the status calls answer from memory, or for a
finished batch that has left memory (and is within retention) from its
records on disk.
Opening replays the journal from disk and closing waits for every write,
so both block briefly (the rest of the API never does).
"""

import base64
import ctypes
import json

from . import _lib
from .context import _js, _s
from .errors import E_NOT_FOUND, StateError, check, \
    raise_last_error
from .op import Op

__all__ = ["Queue"]


class Queue:
    """Open (or make) the queue stored at path. Options (None: the default):
    create (True), strategy ("parallel" | "serial" | "unconstrained"),
    mode ("continuous" | "rounds"), granularity (-1 unlimited, 0, 6, …),
    max_in_flight, service_max_in_flight (0: no cap). Strategy and
    granularity are fixed when the file is made. A context manager."""

    def __init__(self, ctx, path, *, create=True, strategy=None, mode=None,
                 granularity=None, max_in_flight=None,
                 service_max_in_flight=None):
        lib = _lib.lib()
        self._ptr = None
        opts = {"create": bool(create)}
        for k, v in (("strategy", strategy), ("mode", mode),
                     ("granularity", granularity),
                     ("max_in_flight", max_in_flight),
                     ("service_max_in_flight", service_max_in_flight)):
            if v is not None:
                opts[k] = v
        out = ctypes.c_void_p()
        check(lib.ordo_journal_open_json(ctx._handle(), _s(str(path), "path"),
                                         _js(opts), ctypes.byref(out)))
        self._ptr = out.value
        self._ctx = ctx
        self.path = str(path)
        ctx._queues.add(self)

    def _handle(self):
        if self._ptr is None:
            raise StateError(110, None, "the queue is closed")
        return self._ptr

    def close(self):
        """Wait for every journal write, then close. Idempotent."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            check(_lib.lib().ordo_journal_close(ptr))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass

    def __repr__(self):
        return "<ordo.Queue %s%s>" % (self.path,
                                      "" if self._ptr else " closed")

    def enqueue_async(self, batch, payload=None):
        """Enqueue a batch {"id", "service", "reads"?, "writes"?, "deps"?};
        payload (bytes) is sent base64. The op's result, once the batch is
        durable: {"id", "seq"}. The same batch again (a retry: same id and
        content) is safe: {"id", "seq", "already_enqueued": True, "state"}.
        ExistsError for an id already enqueued with other content."""
        b = dict(batch)
        if payload is not None:
            b["payload"] = payload
        if isinstance(b.get("payload"), (bytes, bytearray, memoryview)):
            b["payload"] = base64.b64encode(bytes(b["payload"])).decode()
        ptr = _lib.lib().ordo_journal_enqueue_json(self._handle(), _js(b))
        return Op(ptr, what="journal_enqueue")

    def enqueue(self, batch, payload=None):
        """Blocking enqueue_async: returns {"id", "seq"}."""
        with self.enqueue_async(batch, payload) as op:
            return op.result()

    def _json(self, p):
        lib = _lib.lib()
        try:
            return json.loads(ctypes.string_at(p).decode())
        finally:
            lib.ordo_free(p)

    def status(self, batch_id):
        """{"id", "service", "seq", "state", "reason"?, "explain"?};
        NotFoundError for an id never enqueued."""
        p = _lib.lib().ordo_journal_batch_json(self._handle(),
                                               _s(batch_id, "batch_id"))
        if not p:
            raise_last_error(E_NOT_FOUND)
        return self._json(p)

    def service(self, service):
        """A service's counts and halt state, or None if never seen."""
        p = _lib.lib().ordo_journal_service_json(self._handle(),
                                                 _s(service, "service"))
        return self._json(p) if p else None

    def totals(self):
        """{"queued", "waiting", "in_flight", "unknown", "committed",
        "invalid", "services", "journal_records", "failed"?}."""
        p = _lib.lib().ordo_journal_totals_json(self._handle())
        if not p:
            raise_last_error()
        return self._json(p)

    def set_policy(self, service, policy=None, *, on_invalid=None,
                   max_in_flight=None, dep_timeout_s=None):
        """A service's policy: on_invalid "skip" | "halt", max_in_flight N,
        dep_timeout_s S (a batch whose dep is not enqueued within S seconds
        of it ends INVALID; 0: no limit) (or a policy dict)."""
        pol = dict(policy or {})
        if on_invalid is not None:
            pol["on_invalid"] = on_invalid
        if max_in_flight is not None:
            pol["max_in_flight"] = max_in_flight
        if dep_timeout_s is not None:
            pol["dep_timeout_s"] = dep_timeout_s
        check(_lib.lib().ordo_journal_set_policy_json(
            self._handle(), _s(service, "service"), _js(pol)))

    def resume(self, service):
        """Let a halted service go on; StateError if it is not halted."""
        check(_lib.lib().ordo_journal_resume(self._handle(),
                                             _s(service, "service")))

    def cancel_async(self, batch_id):
        """Cancel a batch not yet sent (QUEUED or WAITING): it ends INVALID
        with reason "cancelled", its locks released, its dependants INVALID
        in turn. The op's result, once the cancel is durable: {"id",
        "state": "INVALID", "reason": "cancelled"}. NotFoundError; StateError
        for a batch the ledger has (SUBMITTED, UNKNOWN) or one finished."""
        ptr = _lib.lib().ordo_journal_cancel(self._handle(),
                                             _s(batch_id, "batch_id"))
        return Op(ptr, what="journal_cancel")

    def cancel(self, batch_id):
        """Blocking cancel_async: returns {"id", "state", "reason"}."""
        with self.cancel_async(batch_id) as op:
            return op.result()
