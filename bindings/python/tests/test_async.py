"""The asyncio path: ops awaited through their eventfd, never blocking the
loop; the HIPE 0012 acceptance test from Python."""

import asyncio
import time

import pytest

import ordo


def test_dids_finish_while_keygen_runs(ctx, wallet):
    async def main():
        # 2048 bits: a safe-prime search far longer than 50 DIDs.
        keygen = ctx.cred_def_create_async(wallet.id, ["name"], bits=2048)
        t0 = time.monotonic()
        dids = await asyncio.gather(*[ctx.did_create_async(wallet.id)
                                      for _ in range(50)])
        elapsed = time.monotonic() - t0
        assert not keygen.done(), "keygen finished before the DIDs"
        assert len({d["did"] for d in dids}) == 50
        assert keygen.cancel()
        with pytest.raises(ordo.CanceledError):
            await keygen
        return elapsed

    elapsed = asyncio.run(main())
    assert elapsed < 10


def test_loop_is_not_blocked(ctx, wallet):
    async def ticker(stop, ticks):
        while not stop.is_set():
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main():
        stop, ticks = asyncio.Event(), []
        t = asyncio.create_task(ticker(stop, ticks))
        op = ctx.cred_def_create_async(wallet.id, ["a"], bits=2048)
        await asyncio.sleep(0.3)  # the keygen runs; the loop keeps ticking
        op.cancel()
        with pytest.raises(ordo.CanceledError):
            await op
        stop.set()
        await t
        return ticks

    ticks = asyncio.run(main())
    assert len(ticks) >= 10
    gaps = [b - a for a, b in zip(ticks, ticks[1:])]
    assert max(gaps) < 0.25


def test_task_cancel_cancels_op(ctx, wallet):
    async def main():
        op = ctx.cred_def_create_async(wallet.id, ["a"], bits=2048)
        task = asyncio.ensure_future(op)
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # ordo was asked to cancel: the op ends CANCELED, nothing stored
        with pytest.raises(ordo.CanceledError):
            await op
        return op

    op = asyncio.run(main())
    assert op.status == 103 and op.done()


def test_blocking_cancel_of_keygen(ctx, wallet):
    op = ctx.cred_def_create_async(wallet.id, ["a"], bits=2048)
    time.sleep(0.05)
    t0 = time.monotonic()
    assert op.cancel() is True
    with pytest.raises(ordo.CanceledError) as ei:
        op.result(timeout=30)
    assert ei.value.name == "ORDO_E_CANCELED"
    assert time.monotonic() - t0 < 5
    assert op.cancel() is False  # finished already


def test_await_results_and_errors(ctx, wallet):
    async def main():
        w = wallet.id
        await ctx.record_add_async(w, "t", "a", "1", {"k": "v"})
        rec = await ctx.record_get_async(w, "t", "a")
        vk = (await ctx.did_create_async(w))["verkey"]
        sig = await ctx.sign_async(w, vk, b"m")
        ok = await ctx.verify_async(vk, b"m", sig)
        with pytest.raises(ordo.RecordDuplicateError):
            await ctx.record_add_async(w, "t", "a", "2")
        # one op awaited twice (and once more after it finished)
        op = ctx.record_count_async(w, "t")
        a, b = await asyncio.gather(op, op)
        c = await op
        return rec, sig, ok, (a, b, c)

    rec, sig, ok, counts = asyncio.run(main())
    assert rec["value"] == "1" and len(sig) == 64 and ok is True
    assert counts == (1, 1, 1)


def test_op_result_from_thread_and_loop(ctx, wallet):
    """An op awaited on the loop while another thread blocks on it."""
    async def main():
        op = ctx.cred_def_create_async(wallet.id, ["a"], bits=256)
        loop = asyncio.get_running_loop()
        blocking = loop.run_in_executor(None, op.result, 60)
        awaited = await op
        return awaited, await blocking

    a, b = asyncio.run(main())
    assert a == b and a["id"]


def test_loop_ends_with_op_pending(ctx, wallet):
    """asyncio.run cancels a task still awaiting an op when it ends: the op
    is cancelled too, stays usable, and nothing is left on the dead loop."""
    held = {}

    async def main():
        op = held["op"] = ctx.cred_def_create_async(wallet.id, ["a"],
                                                    bits=2048)
        asyncio.ensure_future(op)
        await asyncio.sleep(0.02)

    asyncio.run(main())
    with pytest.raises(ordo.CanceledError):
        held["op"].result(timeout=30)
