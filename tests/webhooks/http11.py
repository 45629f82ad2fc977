"""An HTTP/1.1 receiver with kept-alive connections, run as its own process, for the delivery
client's tests: `python -m tests.webhooks.http11 <port>`.

Every POST is answered by its path:

    /ok             204, the connection kept open
    /chunked        200 with a short chunked body (and a trailer), kept open
    /chunked-long   200 with a chunked body of 120 KiB, kept open
    /close          204 with `connection: close`, then closed
    /drop-next      204, kept open; the next request on that connection is read and then
                    the connection is closed unanswered (a receiver that closed it while idle)

GET /_stats answers what it got: {"connections": n, "requests": [[connection, path], ...]}.
"""

import asyncio
import json
import sys

CONNECTIONS = 0
REQUESTS: list[tuple[int, str]] = []


async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    global CONNECTIONS
    CONNECTIONS += 1
    number = CONNECTIONS
    drop_next = False
    try:
        while True:
            head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            method, path, _ = head[0].split(" ", 2)
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            await reader.readexactly(length)
            if method == "GET":
                body = json.dumps({"connections": CONNECTIONS, "requests": REQUESTS}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    + f"content-length: {len(body)}\r\n\r\n".encode()
                    + body
                )
                continue
            REQUESTS.append((number, path))
            if drop_next:
                return
            if path == "/chunked":
                writer.write(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    b"5;note=x\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n"
                )
            elif path == "/chunked-long":
                chunk = b"x" * 40960
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                for _ in range(3):
                    writer.write(b"a000\r\n" + chunk + b"\r\n")
                writer.write(b"0\r\n\r\n")
            elif path == "/close":
                writer.write(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
                await writer.drain()
                return
            else:
                drop_next = path == "/drop-next"
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main(port: int) -> None:
    server = await asyncio.start_server(connection, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
