"""DIDComm v1 (Aries RFC 0019) both ways against an independent packer: the
scheme deployed Python agents (ACA-Py's askar-less path) run on PyNaCl —
the content key boxed per recipient (crypto_box with a 24-byte nonce and the
sender's verkey sealed, or crypto_box_seal), the payload sealed with
ChaCha20-Poly1305-IETF and a 12-byte iv under the "xchacha20poly1305_ietf"
label, the AAD the ASCII of the protected header. Written here from the
RFC and those agents' behaviour with libsodium's Python binding (Debian's
python3-nacl), not with ordo's code: an envelope it packs must open in
ordo, and one ordo packs must open here."""

import base64
import json

import pytest

nacl_bindings = pytest.importorskip("nacl.bindings")
nacl_utils = pytest.importorskip("nacl.utils")

B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"


def b58enc(data):
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = B58[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\0"))) + out


def b58dec(text):
    n = 0
    for ch in text:
        n = n * 58 + B58.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\0" * (len(text) - len(text.lstrip("1"))) + body


def b64u(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64u(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def agent_keypair(seed=None):
    """An agent's ed25519 key: (verkey bytes, 64-byte secret)."""
    seed = seed or nacl_utils.random(32)
    return nacl_bindings.crypto_sign_seed_keypair(seed)


def agent_pack(message, to_verkeys, sender=None):
    """Pack as the deployed agents do."""
    cek = nacl_utils.random(32)
    recipients = []
    for vk in to_verkeys:
        target = nacl_bindings.crypto_sign_ed25519_pk_to_curve25519(vk)
        if sender is not None:
            svk, ssk = sender
            nonce = nacl_utils.random(nacl_bindings.crypto_box_NONCEBYTES)
            recipients.append({
                "encrypted_key": b64u(nacl_bindings.crypto_box(
                    cek, nonce, target,
                    nacl_bindings.crypto_sign_ed25519_sk_to_curve25519(ssk))),
                "header": {
                    "kid": b58enc(vk),
                    "sender": b64u(nacl_bindings.crypto_box_seal(
                        b58enc(svk).encode(), target)),
                    "iv": b64u(nonce)}})
        else:
            recipients.append({
                "encrypted_key": b64u(nacl_bindings.crypto_box_seal(cek,
                                                                    target)),
                "header": {"kid": b58enc(vk)}})
    protected = b64u(json.dumps({
        "enc": "xchacha20poly1305_ietf", "typ": "JWM/1.0",
        "alg": "Authcrypt" if sender is not None else "Anoncrypt",
        "recipients": recipients}).encode())
    iv = nacl_utils.random(
        nacl_bindings.crypto_aead_chacha20poly1305_ietf_NPUBBYTES)
    assert len(iv) == 12
    out = nacl_bindings.crypto_aead_chacha20poly1305_ietf_encrypt(
        message, protected.encode("ascii"), iv, cek)
    return {"protected": protected, "iv": b64u(iv),
            "ciphertext": b64u(out[:-16]), "tag": b64u(out[-16:])}


def agent_unpack(envelope, keypair):
    """Open as the deployed agents do: (message, sender verkey or None)."""
    vk, sk = keypair
    header = json.loads(unb64u(envelope["protected"]))
    assert header["enc"] == "xchacha20poly1305_ietf"
    mine = [r for r in header["recipients"] if r["header"]["kid"] == b58enc(vk)]
    assert len(mine) == 1
    r = mine[0]
    pk = nacl_bindings.crypto_sign_ed25519_pk_to_curve25519(vk)
    csk = nacl_bindings.crypto_sign_ed25519_sk_to_curve25519(sk)
    sender = None
    if header["alg"] == "Authcrypt":
        sender = nacl_bindings.crypto_box_seal_open(
            unb64u(r["header"]["sender"]), pk, csk).decode()
        spk = nacl_bindings.crypto_sign_ed25519_pk_to_curve25519(
            b58dec(sender))
        cek = nacl_bindings.crypto_box_open(
            unb64u(r["encrypted_key"]), unb64u(r["header"]["iv"]), spk, csk)
    else:
        assert header["alg"] == "Anoncrypt"
        cek = nacl_bindings.crypto_box_seal_open(
            unb64u(r["encrypted_key"]), pk, csk)
    iv = unb64u(envelope["iv"])
    assert len(iv) == 12  # what a deployed agent insists on
    msg = nacl_bindings.crypto_aead_chacha20poly1305_ietf_decrypt(
        unb64u(envelope["ciphertext"]) + unb64u(envelope["tag"]),
        envelope["protected"].encode("ascii"), iv, cek)
    return msg, sender


MESSAGE = b'{"@type":"https://didcomm.org/basicmessage/1.0/message",' \
          b'"content":"interop, both ways"}'


@pytest.mark.parametrize("authcrypt", [True, False])
def test_agent_packs_ordo_unpacks(ctx, wallet, authcrypt):
    did = ctx.did_create(wallet.id)
    other = agent_keypair()
    sender = agent_keypair() if authcrypt else None
    env = agent_pack(MESSAGE, [other[0], b58dec(did["verkey"])], sender)
    r = ctx.unpack(wallet.id, env)
    assert r["message"] == MESSAGE
    assert r["recipient_verkey"] == did["verkey"]
    if authcrypt:
        assert r["sender_verkey"] == b58enc(sender[0])
    else:
        assert r["sender_verkey"] is None


@pytest.mark.parametrize("authcrypt", [True, False])
def test_ordo_packs_agent_unpacks(ctx, wallet, authcrypt):
    me = ctx.did_create(wallet.id)
    agents = [agent_keypair() for _ in range(3)]
    env = ctx.pack(wallet.id, MESSAGE, [b58enc(a[0]) for a in agents],
                   me["verkey"] if authcrypt else None)
    if isinstance(env, (bytes, str)):
        env = json.loads(env)
    for a in agents:
        msg, sender = agent_unpack(env, a)
        assert msg == MESSAGE
        assert sender == (me["verkey"] if authcrypt else None)


def test_agent_seeded_keys_match_ordo(ctx, wallet):
    """The same seed gives the same verkey on both sides (the vectors'
    Trustee1), so a DID made from a seed is the agent's DID."""
    seed = b"000000000000000000000000Trustee1"
    vk, _ = agent_keypair(seed)
    did = ctx.did_create(wallet.id, seed=seed.decode())
    assert did["verkey"] == b58enc(vk)
    assert did["verkey"] == "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL"
