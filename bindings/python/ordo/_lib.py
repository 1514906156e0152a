"""Finding and loading libordo.so, and the ctypes prototypes of include/ordo.h.

The library is looked for, in order:

1. the path in the environment variable ``ORDO_LIBRARY``;
2. ``libordo.so`` (or ``libordo.so.0``) next to this package;
3. ``ctypes.util.find_library("ordo")`` (an installed library).

It is loaded on first use, so ``import ordo`` works without it; a failure
raises :class:`LibraryNotFoundError` naming every place tried and why each
failed.
"""

import ctypes
import ctypes.util
import os
import threading

__all__ = ["LibraryNotFoundError", "lib", "load_library", "library_path"]


class LibraryNotFoundError(ImportError):
    """libordo.so could not be found or loaded."""


_lock = threading.Lock()
_lib = None
_path = None

c_char_p = ctypes.c_char_p
c_void_p = ctypes.c_void_p
c_int = ctypes.c_int
c_size_t = ctypes.c_size_t
c_ull = ctypes.c_ulonglong


class Config(ctypes.Structure):
    """struct ordo_config (include/ordo.h, "Configuration")."""

    _fields_ = [
        ("cheap_threads", ctypes.c_uint),
        ("heavy_threads", ctypes.c_uint),
        ("heavy_nice", ctypes.c_int),
        ("net_threads", ctypes.c_uint),
        ("queue_limit", ctypes.c_uint),
        ("single_executor", ctypes.c_int),
    ]


# name: (restype, argtypes). Ops, contexts and journals are opaque pointers.
_PROTOTYPES = {
    "ordo_strerror": (c_char_p, [c_int]),
    "ordo_errname": (c_char_p, [c_int]),
    "ordo_last_error": (c_int, []),
    "ordo_last_error_message": (c_char_p, []),
    "ordo_free": (None, [c_void_p]),
    # configuration and context
    "ordo_config_init": (None, [ctypes.POINTER(Config)]),
    "ordo_config_from_json": (c_int, [ctypes.POINTER(Config), c_char_p]),
    "ordo_config_from_env": (c_int, [ctypes.POINTER(Config)]),
    "ordo_config_validate": (c_int, [ctypes.POINTER(Config)]),
    "ordo_ctx_new": (c_void_p, [ctypes.POINTER(Config)]),
    "ordo_ctx_free": (None, [c_void_p]),
    "ordo_ctx_config": (ctypes.POINTER(Config), [c_void_p]),
    "ordo_ctx_metrics_json": (c_void_p, [c_void_p]),
    # ops
    "ordo_op_wait": (c_int, [c_void_p, c_int]),
    "ordo_op_fd": (c_int, [c_void_p]),
    "ordo_op_cancel": (c_int, [c_void_p]),
    "ordo_op_status": (c_int, [c_void_p]),
    "ordo_op_message": (c_char_p, [c_void_p]),
    "ordo_op_result": (c_char_p, [c_void_p]),
    "ordo_op_result_bytes": (c_int, [c_void_p, ctypes.POINTER(c_void_p),
                                     ctypes.POINTER(c_size_t)]),
    "ordo_op_retain": (c_void_p, [c_void_p]),
    "ordo_op_release": (None, [c_void_p]),
    # wallets
    "ordo_wallet_create": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_wallet_open": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_wallet_close": (c_void_p, [c_void_p, c_char_p]),
    "ordo_wallet_delete": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_wallet_list": (c_void_p, [c_void_p, c_char_p]),
    "ordo_wallet_export": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_wallet_import": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p]),
    # records
    "ordo_record_add": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p,
                                   c_char_p, c_char_p]),
    "ordo_record_get": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p,
                                   c_char_p]),
    "ordo_record_update_value": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                            c_char_p, c_char_p]),
    "ordo_record_update_tags": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                           c_char_p, c_char_p]),
    "ordo_record_add_tags": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                        c_char_p, c_char_p]),
    "ordo_record_delete_tags": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                           c_char_p, c_char_p]),
    "ordo_record_delete": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p]),
    "ordo_record_search": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p,
                                      c_char_p, c_ull, c_ull]),
    "ordo_record_count": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p]),
    # DIDs, keys, messages
    "ordo_did_create": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_did_get": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_did_list": (c_void_p, [c_void_p, c_char_p]),
    "ordo_did_set_metadata": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                         c_char_p]),
    "ordo_did_rotate_start": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                         c_char_p]),
    "ordo_did_rotate_apply": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    "ordo_sign": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p, c_size_t]),
    "ordo_verify": (c_void_p, [c_void_p, c_char_p, c_char_p, c_size_t,
                               c_char_p, c_size_t]),
    "ordo_pack": (c_void_p, [c_void_p, c_char_p, c_char_p, c_size_t, c_char_p,
                             c_char_p]),
    "ordo_unpack": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    # secp256k1
    "ordo_secp256k1_create": (c_void_p, [c_void_p, c_char_p]),
    "ordo_secp256k1_sign": (c_void_p, [c_void_p, c_char_p, c_char_p, c_char_p]),
    "ordo_secp256k1_verify": (c_void_p, [c_void_p, c_char_p, c_char_p,
                                         c_char_p]),
    # credential definitions
    "ordo_cred_def_create": (c_void_p, [c_void_p, c_char_p, c_char_p]),
    # the submission queue
    "ordo_journal_open_json": (c_int, [c_void_p, c_char_p, c_char_p,
                                       ctypes.POINTER(c_void_p)]),
    "ordo_journal_close": (c_int, [c_void_p]),
    "ordo_journal_enqueue_json": (c_void_p, [c_void_p, c_char_p]),
    "ordo_journal_batch_json": (c_void_p, [c_void_p, c_char_p]),
    "ordo_journal_service_json": (c_void_p, [c_void_p, c_char_p]),
    "ordo_journal_totals_json": (c_void_p, [c_void_p]),
    "ordo_journal_set_policy_json": (c_int, [c_void_p, c_char_p, c_char_p]),
    "ordo_journal_resume": (c_int, [c_void_p, c_char_p]),
    "ordo_journal_cancel": (c_void_p, [c_void_p, c_char_p]),
}


def _candidates():
    """(description, path or name) pairs, in the order they are tried."""
    out = []
    env = os.environ.get("ORDO_LIBRARY")
    if env:
        out.append(("$ORDO_LIBRARY", env))
    here = os.path.dirname(os.path.abspath(__file__))
    for name in ("libordo.so", "libordo.so.0"):
        out.append(("next to the package", os.path.join(here, name)))
    found = ctypes.util.find_library("ordo")
    out.append(('ctypes.util.find_library("ordo")', found))
    return out


def _declare(cdll):
    for name, (restype, argtypes) in _PROTOTYPES.items():
        fn = getattr(cdll, name)
        fn.restype = restype
        fn.argtypes = argtypes


def load_library(path=None):
    """Load libordo (once per process) and return the ctypes handle.

    path, if given, is used instead of the search above; it is an error to
    ask for a different path once a library is loaded.
    """
    global _lib, _path
    with _lock:
        if _lib is not None:
            if path is not None and os.path.abspath(path) != _path:
                raise LibraryNotFoundError(
                    "libordo is already loaded from %s" % _path)
            return _lib
        tried = []
        cands = [("load_library(path)", path)] if path is not None \
            else _candidates()
        for what, cand in cands:
            if cand is None:
                tried.append("%s: nothing found" % what)
                continue
            if os.sep in cand and not os.path.exists(cand):
                tried.append("%s: %s does not exist" % (what, cand))
                continue
            try:
                cdll = ctypes.CDLL(cand)
                _declare(cdll)
            except (OSError, AttributeError) as e:
                tried.append("%s: %s: %s" % (what, cand, e))
                continue
            _lib = cdll
            _path = os.path.abspath(cand) if os.sep in cand else cand
            return _lib
        raise LibraryNotFoundError(
            "cannot load libordo; set ORDO_LIBRARY to the path of "
            "libordo.so. Tried:\n  " + "\n  ".join(tried))


def lib():
    """The loaded library (loading it on first use)."""
    return _lib if _lib is not None else load_library()


def library_path():
    """Where the loaded library came from, or None if none is loaded."""
    return _path
