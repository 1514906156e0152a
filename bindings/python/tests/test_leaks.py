"""Many calls through both paths: every op is released (its eventfd closed),
and nothing crashes."""

import asyncio
import gc
import os


def _open_fds():
    return len(os.listdir("/proc/self/fd"))


def test_many_ops_release_everything(ctx, wallet):
    w = wallet.id
    vk = ctx.did_create(w)["verkey"]
    ctx.sign(w, vk, b"warm up")
    asyncio.run(_await(ctx.sign_async(w, vk, b"warm up")))
    gc.collect()
    before = _open_fds()

    for i in range(300):
        sig = ctx.sign(w, vk, b"m%d" % i)
        assert ctx.verify(vk, b"m%d" % i, sig)

    async def burst():
        for _ in range(4):
            sigs = await asyncio.gather(*[ctx.sign_async(w, vk, b"a%d" % i)
                                          for i in range(100)])
            assert all(len(s) == 64 for s in sigs)
            oks = await asyncio.gather(*[ctx.verify_async(vk, b"a%d" % i, s)
                                         for i, s in enumerate(sigs)])
            assert all(oks)

    asyncio.run(burst())

    # ops dropped unfinished, or never waited for, are released too
    for i in range(200):
        ctx.record_add_async(w, "t", "r%d" % i, "v").close()
    ops = [ctx.did_create_async(w) for _ in range(50)]
    del ops
    gc.collect()
    assert ctx.record_count(w, "t") <= 200
    assert _open_fds() <= before + 2


async def _await(op):
    return await op
