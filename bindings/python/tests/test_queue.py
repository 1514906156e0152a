"""The submission queue: enqueue (blocking and awaited), status, totals,
policies, reopen."""

import asyncio
import base64

import pytest

import ordo


def test_enqueue_status_totals_reopen(ctx, tmp_path):
    path = tmp_path / "queue.db"
    with ordo.Queue(ctx, path, strategy="parallel", mode="continuous") as q:
        r = q.enqueue({"id": "T1", "service": "s1", "reads": ["B"],
                       "writes": ["F"]}, payload=b"\x00batch bytes")
        assert r == {"id": "T1", "seq": 1}
        r = q.enqueue({"id": "T2", "service": "s1", "reads": ["F"],
                       "writes": ["E"], "deps": ["T1"]})
        assert r["seq"] == 2
        st = q.status("T1")
        assert st["id"] == "T1" and st["service"] == "s1" and st["seq"] == 1
        assert st["state"] == "QUEUED"
        assert q.status("T2")["state"] == "WAITING"
        t = q.totals()
        assert t["queued"] + t["waiting"] == 2 and t["services"] == 1
        s = q.service("s1")
        assert s["depth"] == 2 and s["halted"] is False
        assert q.service("never") is None
        with pytest.raises(ordo.NotFoundError):
            q.status("T9")
        with pytest.raises(ordo.ExistsError):
            q.enqueue({"id": "T1", "service": "s1"})
    with pytest.raises(ordo.StateError):
        q.totals()  # closed

    with ordo.Queue(ctx, path, create=False) as q:  # replayed from disk
        assert q.status("T1")["seq"] == 1
        assert q.status("T2")["state"] == "WAITING"
        assert q.totals()["services"] == 1
        assert q.enqueue({"id": "T3", "service": "s2"})["seq"] == 3


def test_enqueue_async_many(ctx, tmp_path):
    async def main(q):
        ops = [q.enqueue_async({"id": "B%03d" % i, "service": "s%d" % (i % 3),
                                "writes": ["%02x" % i]},
                               payload=base64.b64encode(b"x") if i % 2
                               else b"raw")
               for i in range(100)]
        return await asyncio.gather(*ops)

    with ordo.Queue(ctx, tmp_path / "q.db") as q:
        res = asyncio.run(main(q))
        assert sorted(r["seq"] for r in res) == list(range(1, 101))
        assert q.totals()["services"] == 3


def test_queue_errors_and_policy(ctx, tmp_path):
    with pytest.raises(ordo.ConfigError):
        ordo.Queue(ctx, tmp_path / "a.db", strategy="fastest")
    with pytest.raises(ordo.OrdoError):
        ordo.Queue(ctx, tmp_path / "missing.db", create=False)
    with ordo.Queue(ctx, tmp_path / "b.db", strategy="serial") as q:
        with pytest.raises(ordo.OrdoError) as ei:
            q.enqueue({"id": "x"})  # no service
        assert ei.value.name == "ORDO_E_INVAL" and "service" in \
            ei.value.message
        with pytest.raises(ordo.OrdoError):
            q.enqueue({"id": "x", "service": "s", "bogus": 1})
        q.enqueue({"id": "x", "service": "s"})
        q.set_policy("s", on_invalid="halt", max_in_flight=2)
        with pytest.raises(ordo.OrdoError):
            q.set_policy("s", on_invalid="explode")
        with pytest.raises(ordo.StateError):
            q.resume("s")  # not halted


def test_context_close_closes_queue(tmp_path):
    c = ordo.Context({"cheap_threads": 1, "heavy_threads": 1})
    q = ordo.Queue(c, tmp_path / "q.db")
    q.enqueue({"id": "a", "service": "s"})
    c.close()
    with pytest.raises(ordo.StateError):
        q.totals()


def test_cancel_retry_and_dep_timeout(ctx, tmp_path):
    path = tmp_path / "c.db"
    with ordo.Queue(ctx, path) as q:
        q.set_policy("s", dep_timeout_s=30)
        q.enqueue({"id": "A", "service": "s", "writes": ["k"],
                   "deps": ["never"]})
        q.enqueue({"id": "B", "service": "t", "deps": ["A"]})
        q.enqueue({"id": "C", "service": "s", "writes": ["k"]})
        assert q.status("C")["state"] == "WAITING"  # behind A's lock
        # The same batch again is safe; other content under its id is not.
        again = q.enqueue({"id": "C", "service": "s", "writes": ["k"]})
        assert again["already_enqueued"] is True and again["seq"] == 3
        with pytest.raises(ordo.ExistsError):
            q.enqueue({"id": "C", "service": "s", "writes": ["j"]})
        # Cancel, blocking: A ends INVALID, B cascades, C is free.
        r = q.cancel("A")
        assert r == {"id": "A", "state": "INVALID", "reason": "cancelled"}
        assert q.status("B")["state"] == "INVALID"
        assert q.status("C")["state"] == "QUEUED"
        with pytest.raises(ordo.StateError):
            q.cancel("A")  # already INVALID
        with pytest.raises(ordo.NotFoundError):
            q.cancel("nope")

        # Awaited.
        async def main():
            return await q.cancel_async("C")
        assert asyncio.run(main())["state"] == "INVALID"
        with pytest.raises(ordo.ConfigError):
            q.set_policy("s", dep_timeout_s=-1)
    with ordo.Queue(ctx, path, create=False) as q:  # replayed
        # Finished batches left memory at the reopen: these statuses are
        # read back from their records on disk.
        assert q.totals()["forgotten"] >= 3
        assert q.status("A")["reason"] == "cancelled"
        assert q.status("B")["state"] == "INVALID"
        assert q.status("C")["state"] == "INVALID"
