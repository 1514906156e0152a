"""DIDComm v1 envelopes packed by a deployed agent (tests/vectors/, verbatim
copies of ../shared/vectors/) open through the binding. Deployed agents seal
the payload with ChaCha20-Poly1305-IETF and a 12-byte iv under the "enc"
label "xchacha20poly1305_ietf"; ordo packs the same way."""

import base64
import json
import os

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                       "..", "..", "..", "tests", "vectors")
TRUSTEE_SEED = "000000000000000000000000Trustee1"
TRUSTEE_VERKEY = "GJ1SzoWzavQYfNL9XkaJdrQejfztN4XqdsiV4ct3LXKL"
STEWARD_VERKEY = "FYmoFw55GeQH7SRFa37dkx1d2dZ3zUF8ckg7wmL7ofN4"


def _vector(name):
    with open(os.path.join(VECTORS, name), encoding="utf-8") as f:
        return json.load(f)


def _b64len(text):
    return len(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))


def test_unpack_deployed_agent_vectors(ctx, wallet):
    did = ctx.did_create(wallet.id, seed=TRUSTEE_SEED)
    assert did["verkey"] == TRUSTEE_VERKEY
    r = ctx.unpack(wallet.id, _vector("didcomm_v1_authcrypt.json"))
    assert r["message"] == (b'{"@type":"https://didcomm.org/basicmessage/1.0/'
                            b'message","content":"interop vector, authcrypt"}')
    assert r["recipient_verkey"] == TRUSTEE_VERKEY
    assert r["sender_verkey"] == STEWARD_VERKEY
    r = ctx.unpack(wallet.id, _vector("didcomm_v1_anoncrypt.json"))
    assert r["message"] == (b'{"@type":"https://didcomm.org/basicmessage/1.0/'
                            b'message","content":"interop vector, anoncrypt"}')
    assert r["recipient_verkey"] == TRUSTEE_VERKEY
    assert r["sender_verkey"] is None


def test_pack_writes_12_byte_iv(ctx, wallet):
    vk = ctx.did_create(wallet.id)["verkey"]
    env = ctx.pack(wallet.id, b"hello", [vk])
    assert _b64len(env["iv"]) == 12 and _b64len(env["tag"]) == 16
