"""The blocking form of every command family."""

import hashlib
import os

import ordo


def test_wallet_lifecycle(ctx, tmp_path):
    path = str(tmp_path / "wallets")
    cfg = {"id": "alice", "path": path}
    creds = {"key": ordo.raw_key(), "key_derivation_method": "raw"}
    assert ctx.wallet_create(cfg, creds) == {"id": "alice"}
    assert ctx.wallet_open(cfg, creds) == {"id": "alice"}
    listed = ctx.wallet_list({"path": path})["wallets"]
    assert {"id": "alice", "open": True} in listed
    assert not ctx.wallet_close("alice")  # {}: success, nothing to say
    listed = ctx.wallet_list({"path": path})["wallets"]
    assert {"id": "alice", "open": False} in listed
    ctx.wallet_delete(cfg, creds)
    assert ctx.wallet_list({"path": path})["wallets"] == []


def test_export_import(ctx, wallet, tmp_path):
    ctx.record_add(wallet.id, "t", "n1", "v1", {"a": "1"})
    did = ctx.did_create(wallet.id)
    out = str(tmp_path / "backup.ordo")
    file_key = ordo.raw_key()
    r = ctx.wallet_export(wallet.id, {"path": out, "key": file_key,
                                      "key_derivation_method": "raw"})
    assert r["path"] == out and r["records"] >= 2
    cfg2 = {"id": "copy", "path": wallet.config["path"]}
    creds2 = {"key": ordo.raw_key(), "key_derivation_method": "raw"}
    r = ctx.wallet_import(cfg2, creds2, {"path": out, "key": file_key})
    assert r["id"] == "copy" and r["records"] >= 2
    ctx.wallet_open(cfg2, creds2)
    try:
        assert ctx.record_get("copy", "t", "n1")["value"] == "v1"
        assert ctx.did_get("copy", did["did"])["verkey"] == did["verkey"]
    finally:
        ctx.wallet_close("copy")


def test_records(ctx, wallet):
    w = wallet.id
    for i in range(25):
        ctx.record_add(w, "cred", "c%02d" % i, "value %d" % i,
                       {"schema": "s%d" % (i % 2), "~n": "%02d" % i})
    r = ctx.record_get(w, "cred", "c03")
    assert r["name"] == "c03" and r["value"] == "value 3"
    assert r["tags"] == {"schema": "s1", "~n": "03"}

    ctx.record_update_value(w, "cred", "c03", "new")
    ctx.record_add_tags(w, "cred", "c03", {"extra": "x"})
    assert ctx.record_get(w, "cred", "c03")["tags"]["extra"] == "x"
    ctx.record_delete_tags(w, "cred", "c03", ["extra"])
    ctx.record_update_tags(w, "cred", "c03", {"schema": "s9"})
    r = ctx.record_get(w, "cred", "c03", {"retrieve_type": True})
    assert r["value"] == "new" and r["tags"] == {"schema": "s9"}
    assert r["type"] == "cred"

    q = {"schema": "s0", "~n": {"$gte": "10"}}
    assert ctx.record_count(w, "cred", q) == 8  # 10, 12, …, 24
    page = ctx.record_search(w, "cred", q, {"retrieve_total_count": True},
                             offset=2, limit=3)
    assert page["total"] == 8 and len(page["records"]) == 3
    names = [r["name"] for r in ctx.record_search_iter(w, "cred", q,
                                                       page_size=2)]
    assert sorted(names) == ["c%02d" % i for i in range(10, 25, 2)]
    assert ctx.record_count(w, "cred") == 25
    assert ctx.record_count(w, "cred", {"$or": [{"schema": "s9"},
                                                {"~n": "00"}]}) == 2

    ctx.record_delete(w, "cred", "c03")
    assert ctx.record_count(w, "cred") == 24


def test_dids_and_rotation(ctx, wallet):
    w = wallet.id
    d = ctx.did_create(w, seed="000000000000000000000000Trustee1",
                       metadata="trustee")
    assert d["did"] == "V4SGRU86Z58d6TV7PBUe6f"  # Indy's Trustee1
    got = ctx.did_get(w, d["did"])
    assert got["verkey"] == d["verkey"] and got["metadata"] == "trustee"
    ctx.did_set_metadata(w, d["did"], "renamed")
    assert ctx.did_get(w, d["did"])["metadata"] == "renamed"
    other = ctx.did_create(w)
    dids = {x["did"] for x in ctx.did_list(w)["dids"]}
    assert {d["did"], other["did"]} <= dids

    old_sig = ctx.sign(w, d["verkey"], b"before")
    new = ctx.did_rotate_start(w, d["did"])["verkey"]
    assert ctx.did_get(w, d["did"])["next_verkey"] == new
    assert ctx.did_rotate_apply(w, d["did"])["verkey"] == new
    assert ctx.did_get(w, d["did"])["verkey"] == new
    assert ctx.verify(d["verkey"], b"before", old_sig) is True
    sig = ctx.sign(w, new, b"after")
    assert ctx.verify(new, b"after", sig)


def test_sign_verify(ctx, wallet):
    vk = ctx.did_create(wallet.id)["verkey"]
    msg = bytes(range(256)) + b"\0tail"
    sig = ctx.sign(wallet.id, vk, msg)
    assert isinstance(sig, bytes) and len(sig) == 64
    assert ctx.verify(vk, msg, sig) is True
    assert ctx.verify(vk, msg + b"!", sig) is False
    assert ctx.verify(vk, msg, bytes(64)) is False


def test_pack_unpack(ctx, wallet, tmp_path):
    w = wallet.id
    alice = ctx.did_create(w)["verkey"]
    bob = ctx.did_create(w)["verkey"]
    env = ctx.pack(w, b"hi bob", [bob], alice)  # authcrypt
    r = ctx.unpack(w, env)
    assert r["message"] == b"hi bob"
    assert r["recipient_verkey"] == bob and r["sender_verkey"] == alice
    env = ctx.pack(w, b"\xff\x00 binary", [bob])  # anoncrypt
    r = ctx.unpack(w, env)
    assert r["message"] == b"\xff\x00 binary"
    assert r["sender_verkey"] is None


def test_secp256k1(ctx, wallet):
    pk = ctx.secp256k1_create(wallet.id)
    assert len(pk) == 66
    digest = hashlib.sha256(b"batch header").digest()
    sig = ctx.secp256k1_sign(wallet.id, pk, digest)
    assert len(sig) == 128
    assert ctx.secp256k1_verify(pk, digest, sig) is True
    assert ctx.secp256k1_verify(pk, hashlib.sha256(b"x").digest(),
                                sig) is False


def test_cred_def(ctx, wallet):
    cd = ctx.cred_def_create(wallet.id, ["name", "age"], tag="v1", bits=256)
    assert cd["id"]
    assert set(cd["public_key"]["r"]) >= {"name", "age", "master_secret"}
    assert "proof" in cd


def test_context_info(ctx):
    assert ctx.config["cheap_threads"] == 2
    m = ctx.metrics()
    assert set(m["classes"]) >= {"cheap", "heavy", "storage", "net"}
    assert ordo.errname(201) == "ORDO_E_WALLET_ACCESS"
    assert ordo.strerror(0) == "success"
    assert os.path.exists(ordo.library_path()) or ordo.library_path()
