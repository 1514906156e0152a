"""ordo: Python binding (ctypes) of libordo, the order-preserving concurrent
engine for ledger clients.

    import ordo

    with ordo.Context({"cheap_threads": 2}) as ctx:
        cfg = {"id": "alice", "path": "/tmp/wallets"}
        creds = {"key": ordo.raw_key(), "key_derivation_method": "raw"}
        ctx.wallet_create(cfg, creds)
        ctx.wallet_open(cfg, creds)
        did = ctx.did_create("alice", seed="000000000000000000000000Trustee1")
        sig = ctx.sign("alice", did["verkey"], b"hello")       # blocking
        op = ctx.sign_async("alice", did["verkey"], b"hello")  # an Op:
        sig = await op          # in a coroutine, or op.result(timeout=5)

Every command has a blocking form ``ctx.NAME(...)`` and an ``_async`` form
that returns an awaitable :class:`Op`. Failures raise :class:`OrdoError`
(with ``code``, ``name``, ``message``) or one of its subclasses.
The library is found through ``$ORDO_LIBRARY``, then next to this package,
then ``ctypes.util.find_library("ordo")``.
"""

import os as _os

from ._lib import LibraryNotFoundError, load_library, library_path
from .errors import *  # noqa: F401,F403  (OrdoError and the subclasses)
from .errors import OrdoError, error_for
from .op import Op
from .context import Context
from .queue import Queue

__version__ = "0.1.0"


def raw_key():
    """A fresh random 32-byte wallet key, as 64 hex characters, for
    "key_derivation_method": "raw"."""
    return _os.urandom(32).hex()


def strerror(code):
    """The description of an error code (ordo_strerror)."""
    from ._lib import lib
    return lib().ordo_strerror(int(code)).decode()


def errname(code):
    """The symbolic name of an error code (ordo_errname)."""
    from ._lib import lib
    return lib().ordo_errname(int(code)).decode()


__all__ = ["Context", "Op", "Queue", "OrdoError", "LibraryNotFoundError",
           "load_library", "library_path", "error_for", "raw_key",
           "strerror", "errname"] + [n for n in dir() if n.endswith("Error")
                                     and n not in ("OrdoError",
                                                   "LibraryNotFoundError")]
