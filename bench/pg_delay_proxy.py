#!/usr/bin/env python3
"""pg_delay_proxy.py — a TCP proxy that puts a network between ordo and a
PostgreSQL server on the same machine, for `ordo bench wallet|journal
--backend postgres`: every chunk is held DELAY_S seconds in each direction
(a round trip of twice that, plus the event loop's millisecond ticks),
order kept, no bandwidth limit.

    bench/pg_delay_proxy.py 55433 55432 0.0005 &
    ordo bench journal --backend postgres \\
        --postgres postgres://postgres@127.0.0.1:55433/ordo

Standard library only; stops with the process (kill it when done).
"""
import asyncio
import sys


async def pump(reader, writer, delay):
    q = asyncio.Queue()
    loop = asyncio.get_running_loop()

    async def send():
        while True:
            due, data = await q.get()
            if data is None:
                writer.close()
                return
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(data)
            await writer.drain()

    sender = asyncio.create_task(send())
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            q.put_nowait((loop.time() + delay, data))
    finally:
        q.put_nowait((0, None))
        await sender


async def main(listen, target, delay):
    async def handle(cr, cw):
        try:
            sr, sw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            cw.close()
            return
        await asyncio.gather(pump(cr, sw, delay), pump(sr, cw, delay),
                             return_exceptions=True)

    srv = await asyncio.start_server(handle, "127.0.0.1", listen)
    async with srv:
        await srv.serve_forever()


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: pg_delay_proxy.py LISTEN_PORT SERVER_PORT DELAY_S")
    asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
