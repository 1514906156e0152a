"""OrdoError and its subclasses, one per common code of ordo_err.

Every failure of a call raises OrdoError (or a subclass) with:

- ``code``: the int from include/ordo.h (``ORDO_E_WALLET_ACCESS`` is 201);
- ``name``: its symbolic name, ``"ORDO_E_WALLET_ACCESS"`` (ordo_errname);
- ``description``: the fixed text of the code (ordo_strerror);
- ``message``: what the op (or the thread's last error) said about this
  failure, or the description when it said nothing.

Catch a subclass (``except ordo.WalletAccessError``) or test ``e.name``.
"""

from . import _lib

__all__ = ["OrdoError", "error_for", "raise_last_error", "check"]

# Code values are never renumbered (include/ordo.h, ORDO_ERR_MAP).
E_INVAL = 100
E_NOMEM = 101
E_BUSY = 102
E_CANCELED = 103
E_TIMEOUT = 104
E_PENDING = 105
E_STATE = 110
E_NOT_FOUND = 112


class OrdoError(Exception):
    """A call failed with an ordo error code."""

    def __init__(self, code, name=None, message=None):
        self.code = int(code)
        try:
            lib = _lib.lib()
            if name is None:
                name = lib.ordo_errname(self.code).decode()
            self.description = lib.ordo_strerror(self.code).decode()
        except _lib.LibraryNotFoundError:
            self.description = ""
        self.name = name if name is not None else "ORDO_E_UNKNOWN"
        self.message = message or self.description
        super().__init__(self.code, self.name, self.message)

    def __str__(self):
        return "%s (%d): %s" % (self.name, self.code, self.message)


_BY_CODE = {}


def _sub(code, clsname, doc, bases=()):
    cls = type(clsname, (OrdoError,) + bases, {"__doc__": doc})
    _BY_CODE[code] = cls
    globals()[clsname] = cls
    __all__.append(clsname)
    return cls


_sub(100, "InvalidArgumentError", "ORDO_E_INVAL: an invalid argument.",
     (ValueError,))
_sub(102, "BusyError", "ORDO_E_BUSY: queue full, or already running.")
_sub(103, "CanceledError", "ORDO_E_CANCELED: the op was cancelled.")
_sub(104, "OrdoTimeoutError", "ORDO_E_TIMEOUT: the op itself timed out "
     "(a wait that runs out raises the built-in TimeoutError instead).")
_sub(106, "ConfigError", "ORDO_E_CONFIG: invalid configuration.",
     (ValueError,))
_sub(107, "JSONError", "ORDO_E_JSON: malformed JSON.", (ValueError,))
_sub(108, "ShutdownError", "ORDO_E_SHUTDOWN: the context is shutting down.")
_sub(110, "StateError", "ORDO_E_STATE: not valid in the current state.")
_sub(112, "NotFoundError", "ORDO_E_NOT_FOUND: not found.", (LookupError,))
_sub(115, "ExistsError", "ORDO_E_EXISTS: already exists.")
_sub(200, "StorageError", "ORDO_E_STORAGE: storage backend error.")
_sub(201, "WalletAccessError", "ORDO_E_WALLET_ACCESS: wrong key or "
     "passphrase.")
_sub(202, "WalletNotFoundError", "ORDO_E_WALLET_NOT_FOUND.", (LookupError,))
_sub(203, "WalletExistsError", "ORDO_E_WALLET_EXISTS.")
_sub(204, "WalletNotOpenError", "ORDO_E_WALLET_NOT_OPEN.")
_sub(205, "RecordDuplicateError", "ORDO_E_RECORD_DUPLICATE.")
_sub(206, "RecordNotFoundError", "ORDO_E_RECORD_NOT_FOUND.", (LookupError,))
_sub(207, "WQLError", "ORDO_E_WQL: invalid WQL query.", (ValueError,))
_sub(208, "WalletFileError", "ORDO_E_WALLET_FILE: export file corrupt, "
     "truncated or tampered.")
_sub(400, "CryptoError", "ORDO_E_CRYPTO.")
_sub(401, "KeyNotFoundError", "ORDO_E_KEY_NOT_FOUND: key or DID not in the "
     "wallet.", (LookupError,))
_sub(402, "BadKeyError", "ORDO_E_BAD_KEY: malformed key, seed or DID.",
     (ValueError,))
_sub(403, "UnpackError", "ORDO_E_UNPACK: tampered, or not for us.")
_sub(500, "QueueError", "ORDO_E_QUEUE: submission queue error.")


def error_for(code, message=None):
    """The OrdoError (subclass) instance for code, not raised."""
    return _BY_CODE.get(int(code), OrdoError)(code, None, message)


def raise_last_error(fallback=E_INVAL):
    """Raise the calling thread's last error (ordo_last_error)."""
    lib = _lib.lib()
    code = lib.ordo_last_error() or fallback
    msg = lib.ordo_last_error_message()
    raise error_for(code, msg.decode(errors="replace") if msg else None)


def check(rc):
    """Raise for a non-zero int result of a call that sets the last error."""
    if rc != 0:
        lib = _lib.lib()
        msg = lib.ordo_last_error_message() if lib.ordo_last_error() == rc \
            else None
        raise error_for(rc, msg.decode(errors="replace") if msg else None)
