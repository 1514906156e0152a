"""Failures raise OrdoError with the code, its name and the op's message."""

import subprocess
import sys
import os

import pytest

import ordo


def test_wrong_key(ctx, wallet):
    ctx.wallet_close(wallet.id)
    bad = {"key": ordo.raw_key(), "key_derivation_method": "raw"}
    with pytest.raises(ordo.OrdoError) as ei:
        ctx.wallet_open(wallet.config, bad)
    e = ei.value
    assert e.name == "ORDO_E_WALLET_ACCESS" and e.code == 201
    assert isinstance(e, ordo.WalletAccessError)
    assert e.message and "ORDO_E_WALLET_ACCESS (201)" in str(e)
    ctx.wallet_open(wallet.config, wallet.credentials)  # the right key works


def test_bad_wql(ctx, wallet):
    with pytest.raises(ordo.WQLError) as ei:
        ctx.record_search(wallet.id, "t", {"a": {"$nope": "x"}})
    assert ei.value.name == "ORDO_E_WQL" and ei.value.message
    with pytest.raises(ordo.OrdoError) as ei:
        ctx.record_count(wallet.id, "t", "{not json")
    assert ei.value.name in ("ORDO_E_WQL", "ORDO_E_JSON")


def test_duplicate_and_missing_record(ctx, wallet):
    ctx.record_add(wallet.id, "t", "n", "v")
    with pytest.raises(ordo.RecordDuplicateError) as ei:
        ctx.record_add(wallet.id, "t", "n", "v2")
    assert ei.value.name == "ORDO_E_RECORD_DUPLICATE"
    with pytest.raises(ordo.RecordNotFoundError):
        ctx.record_get(wallet.id, "t", "absent")
    with pytest.raises(ordo.OrdoError) as ei:
        ctx.record_add("no-such-wallet", "t", "n", "v")
    assert ei.value.name == "ORDO_E_WALLET_NOT_OPEN"


def test_key_errors(ctx, wallet):
    seed = "000000000000000000000000Trustee1"
    ctx.did_create(wallet.id, seed=seed)
    with pytest.raises(ordo.RecordDuplicateError):
        ctx.did_create(wallet.id, seed=seed)
    with pytest.raises(ordo.KeyNotFoundError):
        ctx.did_get(wallet.id, "V4SGRU86Z58d6TV7PBUe6g")
    with pytest.raises(ordo.BadKeyError):
        ctx.verify("not a key", b"m", bytes(64))
    with pytest.raises(ordo.StateError):
        ctx.did_rotate_apply(wallet.id, "V4SGRU86Z58d6TV7PBUe6f")


def test_unpack_tampered(ctx, wallet):
    vk = ctx.did_create(wallet.id)["verkey"]
    env = ctx.pack(wallet.id, b"secret", [vk])
    env["ciphertext"] = env["ciphertext"][:-4] + (
        "AAAA" if env["ciphertext"][-4:] != "AAAA" else "BBBB")
    with pytest.raises(ordo.UnpackError):
        ctx.unpack(wallet.id, env)


def test_arguments_checked_in_python(ctx, wallet):
    with pytest.raises(ValueError):
        ctx.secp256k1_sign(wallet.id, "00" * 33, b"short")
    with pytest.raises(TypeError):
        ctx.sign(wallet.id, "vk", 12)


def test_bad_config():
    with pytest.raises(ordo.ConfigError) as ei:
        ordo.Context({"cheap_threads": 0})
    assert "cheap_threads" in ei.value.message
    with pytest.raises(ordo.ConfigError) as ei:
        ordo.Context({"no_such_key": 1})
    assert "no_such_key" in ei.value.message


def test_closed_context(tmp_path):
    c = ordo.Context({"cheap_threads": 1, "heavy_threads": 1})
    c.close()
    c.close()  # idempotent
    with pytest.raises(ordo.StateError):
        c.did_create("w")


def test_wait_timeout(ctx, wallet):
    op = ctx.cred_def_create_async(wallet.id, ["a"], bits=2048)
    try:
        with pytest.raises(TimeoutError):
            op.result(timeout=0.01)
        assert not op.done()
    finally:
        op.cancel()
        with pytest.raises(ordo.CanceledError):
            op.result(timeout=30)


def test_library_not_found_names_what_was_tried(tmp_path):
    env = dict(os.environ, ORDO_LIBRARY=str(tmp_path / "nope.so"))
    code = ("import ordo\n"
            "try:\n"
            "    ordo.load_library()\n"
            "except ordo.LibraryNotFoundError as e:\n"
            "    print(e)\n")
    pkg = os.path.join(os.path.dirname(__file__), "..")
    env["PYTHONPATH"] = pkg + os.pathsep + env.get("PYTHONPATH", "")
    out = subprocess.run([sys.executable, "-c", code], env=env,
                         capture_output=True, text=True, timeout=60).stdout
    assert "ORDO_LIBRARY" in out and "nope.so does not exist" in out
    assert "next to the package" in out and "find_library" in out
