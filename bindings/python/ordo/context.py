"""Context: an ordo_ctx (its own executors) and every command on it.

Each command comes in two forms with the same arguments:

- ``ctx.NAME(...)`` blocks and returns the result;
- ``ctx.NAME_async(...)`` returns an :class:`ordo.Op` at once: ``await`` it
  from asyncio, call ``.result(timeout)`` on it, or ``.cancel()`` it.

Results are the command's JSON result decoded (see include/ordo.h for each
shape), except where the C call's result is one value, which is unwrapped:
``sign`` -> bytes, ``verify`` / ``secp256k1_verify`` -> bool,
``secp256k1_create`` -> public key hex str, ``secp256k1_sign`` -> signature
hex str, ``record_count`` -> int, ``unpack`` -> dict whose ``"message"`` is
bytes. Commands that only report success (close, delete, update, ...) give
what the C op gives: ``{}`` or ``{"id": …}``, or None when it has no result.

Arguments that are JSON in C (configs, credentials, tags, queries, options)
are given as dicts or lists (a str is passed through as JSON text).
"""

import json
import threading
import weakref

from . import _lib
from .errors import OrdoError, StateError, raise_last_error, check
from .op import Op

__all__ = ["Context"]

_E_STATE = 110


def _js(value):
    """A JSON argument: None stays NULL; str is JSON text already."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    return json.dumps(value).encode()


def _s(value, what="argument"):
    """A string argument (NULL for None)."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode()
    raise TypeError("%s must be a str, not %s" % (what, type(value).__name__))


def _b(value, what="message"):
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    raise TypeError("%s must be bytes, not %s" % (what, type(value).__name__))


def _field(key):
    return lambda v, _b: v[key]


def _unpacked(v, data):
    v = dict(v)
    v["message"] = data
    return v


def _blocking(async_name):
    def method(self, *args, **kwargs):
        op = getattr(self, async_name)(*args, **kwargs)
        try:
            return op.result()
        finally:
            op.close()
    name = async_name[:-len("_async")]
    method.__name__ = name
    method.__qualname__ = "Context." + name
    method.__doc__ = ("Blocking form of :meth:`%s`: waits and returns the "
                      "result (or raises OrdoError)." % async_name)
    return method


class Context:
    """An ordo context: executors for the cheap, heavy, storage and net
    classes. ``config`` is a dict of the keys of include/ordo.h
    ("Configuration": cheap_threads, heavy_threads, heavy_nice, net_threads,
    queue_limit, single_executor), applied over the defaults and the
    ``ORDO_*`` environment variables. Use it as a context manager, or call
    close(): that closes the queues opened on it, cancels queued ops, waits
    for running ones, and frees the executors."""

    def __init__(self, config=None):
        lib = _lib.lib()
        self._lock = threading.Lock()
        self._queues = weakref.WeakSet()
        self._ptr = None
        cfg = _lib.Config()
        lib.ordo_config_init(cfg)
        check(lib.ordo_config_from_env(cfg))
        if config is not None:
            check(lib.ordo_config_from_json(cfg, _js(config)))
        check(lib.ordo_config_validate(cfg))
        ptr = lib.ordo_ctx_new(cfg)
        if not ptr:
            raise_last_error()
        self._ptr = ptr

    # -- lifetime --------------------------------------------------------

    def _handle(self):
        ptr = self._ptr
        if ptr is None:
            raise StateError(_E_STATE, None, "the context is closed")
        return ptr

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Close queues opened on this context, then free it (ordo_ctx_free).
        Ops still held stay readable. Idempotent."""
        with self._lock:
            ptr, self._ptr = self._ptr, None
        if ptr is None:
            return
        for q in list(self._queues):
            try:
                q.close()
            except OrdoError:
                pass
        _lib.lib().ordo_ctx_free(ptr)

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
        return "<ordo.Context %s>" % ("closed" if self.closed else "open")

    # -- introspection ---------------------------------------------------

    @property
    def config(self):
        """The configuration in force (defaults resolved), as a dict."""
        c = _lib.lib().ordo_ctx_config(self._handle()).contents
        return {"cheap_threads": c.cheap_threads,
                "heavy_threads": c.heavy_threads,
                "heavy_nice": c.heavy_nice,
                "net_threads": c.net_threads,
                "queue_limit": c.queue_limit,
                "single_executor": bool(c.single_executor)}

    def metrics(self):
        """Per-class metrics (ordo_ctx_metrics_json), decoded."""
        lib = _lib.lib()
        p = lib.ordo_ctx_metrics_json(self._handle())
        if not p:
            raise MemoryError("ordo_ctx_metrics_json")
        try:
            return json.loads(_lib.ctypes.string_at(p).decode())
        finally:
            lib.ordo_free(p)

    def _op(self, fn, *args, transform=None, keep=None):
        lib = _lib.lib()
        ptr = getattr(lib, fn)(self._handle(), *args)
        return Op(ptr, transform=transform, keep=keep, what=fn[5:])

    # -- wallets ---------------------------------------------------------

    def wallet_create_async(self, config, credentials):
        """Create a wallet. config: {"id", "path"?, "storage"?};
        credentials: {"key", "key_derivation_method"?}. Result: {"id": …}."""
        return self._op("ordo_wallet_create", _js(config), _js(credentials))

    def wallet_open_async(self, config, credentials):
        """Open a wallet. Result: {"id": …}. Wrong key: WalletAccessError."""
        return self._op("ordo_wallet_open", _js(config), _js(credentials))

    def wallet_close_async(self, wallet_id):
        return self._op("ordo_wallet_close", _s(wallet_id, "wallet_id"))

    def wallet_delete_async(self, config, credentials):
        """Check the credentials, then remove the (closed) wallet."""
        return self._op("ordo_wallet_delete", _js(config), _js(credentials))

    def wallet_list_async(self, config=None):
        """Result: {"wallets": [{"id", "open"}, …]}; config may give
        {"path": …}."""
        return self._op("ordo_wallet_list", _js(config))

    def wallet_export_async(self, wallet_id, export_config):
        """export_config: {"path", "key", "key_derivation_method"?}.
        Result: {"path", "records"}. Runs on the heavy class; cancellable."""
        return self._op("ordo_wallet_export", _s(wallet_id, "wallet_id"),
                        _js(export_config))

    def wallet_import_async(self, config, credentials, import_config):
        """A new wallet from an export file; import_config: {"path", "key"}.
        Result: {"id", "records"}."""
        return self._op("ordo_wallet_import", _js(config), _js(credentials),
                        _js(import_config))

    # -- records ---------------------------------------------------------

    def record_add_async(self, wallet_id, type, name, value, tags=None):
        return self._op("ordo_record_add", _s(wallet_id), _s(type, "type"),
                        _s(name, "name"), _s(value, "value"), _js(tags))

    def record_get_async(self, wallet_id, type, name, options=None):
        """Result: {"type"?, "name", "value", "tags"}; options:
        {"retrieve_value", "retrieve_tags", "retrieve_type"}."""
        return self._op("ordo_record_get", _s(wallet_id), _s(type, "type"),
                        _s(name, "name"), _js(options))

    def record_update_value_async(self, wallet_id, type, name, value):
        return self._op("ordo_record_update_value", _s(wallet_id),
                        _s(type, "type"), _s(name, "name"),
                        _s(value, "value"))

    def record_update_tags_async(self, wallet_id, type, name, tags):
        """Replace all tags."""
        return self._op("ordo_record_update_tags", _s(wallet_id),
                        _s(type, "type"), _s(name, "name"), _js(tags))

    def record_add_tags_async(self, wallet_id, type, name, tags):
        """Add tags, overwriting those of the same name."""
        return self._op("ordo_record_add_tags", _s(wallet_id),
                        _s(type, "type"), _s(name, "name"), _js(tags))

    def record_delete_tags_async(self, wallet_id, type, name, tag_names):
        return self._op("ordo_record_delete_tags", _s(wallet_id),
                        _s(type, "type"), _s(name, "name"),
                        _js(list(tag_names)))

    def record_delete_async(self, wallet_id, type, name):
        return self._op("ordo_record_delete", _s(wallet_id), _s(type, "type"),
                        _s(name, "name"))

    def record_search_async(self, wallet_id, type, query=None, options=None,
                            offset=0, limit=0):
        """WQL query (a dict; None: every record). Result:
        {"records": [...], "total"?: N}; limit 0: all. Bad WQL: WQLError."""
        return self._op("ordo_record_search", _s(wallet_id), _s(type, "type"),
                        _js(query if query is not None else {}), _js(options),
                        int(offset), int(limit))

    def record_count_async(self, wallet_id, type, query=None):
        """Result: the number of matching records (int)."""
        return self._op("ordo_record_count", _s(wallet_id), _s(type, "type"),
                        _js(query if query is not None else {}),
                        transform=_field("count"))

    def record_search_iter(self, wallet_id, type, query=None, options=None,
                           page_size=100):
        """Blocking generator over every matching record, page_size at a
        time (offset/limit paging)."""
        if page_size <= 0:
            raise ValueError("page_size must be positive")
        offset = 0
        while True:
            page = self.record_search(wallet_id, type, query, options, offset,
                                      page_size)["records"]
            yield from page
            if len(page) < page_size:
                return
            offset += len(page)

    # -- DIDs, keys, messages --------------------------------------------

    def did_create_async(self, wallet_id, seed=None, metadata=None):
        """Result: {"did", "verkey"}. A DID that exists:
        RecordDuplicateError."""
        opts = {}
        if seed is not None:
            opts["seed"] = seed
        if metadata is not None:
            opts["metadata"] = metadata
        return self._op("ordo_did_create", _s(wallet_id),
                        _js(opts) if opts else None)

    def did_get_async(self, wallet_id, did):
        """Result: {"did", "verkey", "metadata", "next_verkey"?}."""
        return self._op("ordo_did_get", _s(wallet_id), _s(did, "did"))

    def did_list_async(self, wallet_id):
        """Result: {"dids": [{"did", "verkey", "metadata"}, …]}."""
        return self._op("ordo_did_list", _s(wallet_id))

    def did_set_metadata_async(self, wallet_id, did, metadata):
        return self._op("ordo_did_set_metadata", _s(wallet_id), _s(did, "did"),
                        _s(metadata, "metadata"))

    def did_rotate_start_async(self, wallet_id, did, seed=None):
        """Make the DID's next key. Result: {"verkey": new}."""
        return self._op("ordo_did_rotate_start", _s(wallet_id), _s(did, "did"),
                        _js({"seed": seed}) if seed is not None else None)

    def did_rotate_apply_async(self, wallet_id, did):
        """Make the next key current. Result: {"verkey": …}."""
        return self._op("ordo_did_rotate_apply", _s(wallet_id),
                        _s(did, "did"))

    def sign_async(self, wallet_id, verkey, message):
        """Result: the 64-byte ed25519 signature (bytes)."""
        msg = _b(message)
        return self._op("ordo_sign", _s(wallet_id), _s(verkey, "verkey"), msg,
                        len(msg), transform=lambda _v, data: data,
                        keep=msg)

    def verify_async(self, verkey, message, signature):
        """Result: True if signature is verkey's over message."""
        msg, sig = _b(message), _b(signature, "signature")
        return self._op("ordo_verify", _s(verkey, "verkey"), msg, len(msg),
                        sig, len(sig), transform=_field("valid"),
                        keep=(msg, sig))

    def pack_async(self, wallet_id, message, recipients, sender_verkey=None):
        """Aries RFC 0019 envelope for recipients (verkeys): authcrypt from
        sender_verkey, anoncrypt without. Result: the envelope (dict)."""
        msg = _b(message)
        return self._op("ordo_pack", _s(wallet_id), msg, len(msg),
                        _js(list(recipients)), _s(sender_verkey, "verkey"),
                        keep=msg)

    def unpack_async(self, wallet_id, envelope):
        """Result: {"message": bytes, "recipient_verkey",
        "sender_verkey" (None for anoncrypt)}. UnpackError if tampered or
        not for this wallet."""
        return self._op("ordo_unpack", _s(wallet_id), _js(envelope),
                        transform=_unpacked)

    # -- secp256k1 -------------------------------------------------------

    def secp256k1_create_async(self, wallet_id):
        """Result: the new key's public key, 66 hex characters."""
        return self._op("ordo_secp256k1_create", _s(wallet_id),
                        transform=_field("public_key"))

    def secp256k1_sign_async(self, wallet_id, public_key, digest):
        """Sign a 32-byte digest (SHA-256 of the signed bytes). Result: the
        compact signature, 128 hex characters."""
        d = _b(digest, "digest")
        if len(d) != 32:
            raise ValueError("digest must be 32 bytes, not %d" % len(d))
        return self._op("ordo_secp256k1_sign", _s(wallet_id),
                        _s(public_key, "public_key"), d,
                        transform=_field("signature"), keep=d)

    def secp256k1_verify_async(self, public_key, digest, signature):
        """Result: True if signature (hex) is public_key's over digest."""
        d = _b(digest, "digest")
        if len(d) != 32:
            raise ValueError("digest must be 32 bytes, not %d" % len(d))
        return self._op("ordo_secp256k1_verify", _s(public_key, "public_key"),
                        d, _s(signature, "signature"),
                        transform=_field("valid"), keep=d)

    # -- credential definitions ------------------------------------------

    def cred_def_create_async(self, wallet_id, attributes, tag=None,
                              issuer_did=None, schema_seq_no=None, bits=None):
        """CL keys on the heavy class (seconds at the default 1025 bits;
        bits 256..4096, small for tests); cancellable. Result:
        {"id", "public_key", "proof"}."""
        opts = {"attributes": list(attributes)}
        for k, v in (("tag", tag), ("issuer_did", issuer_did),
                     ("schema_seq_no", schema_seq_no), ("bits", bits)):
            if v is not None:
                opts[k] = v
        return self._op("ordo_cred_def_create", _s(wallet_id), _js(opts))


for _name in [n for n in vars(Context) if n.endswith("_async")]:
    setattr(Context, _name[:-len("_async")], _blocking(_name))
del _name
