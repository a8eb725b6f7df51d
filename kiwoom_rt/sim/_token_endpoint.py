"""The simulator's token endpoints over HTTP (au10001 ``/oauth2/token``, au10002
``/oauth2/revoke``): one request, answered from the ``TokenStore``."""

from __future__ import annotations

import asyncio
import json

from .tokens import TokenStore

__all__ = ["serve_token_request"]


async def serve_token_request(store: TokenStore, head: bytes, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter) -> None:
    """Answer one HTTP POST whose head (request line and headers) was already read."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    path = parts[1] if len(parts) > 1 else ""
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    try:
        length = int(headers.get("content-length", "0"))
        body = await asyncio.wait_for(reader.readexactly(length), timeout=10) if length else b""
        payload = json.loads(body or b"{}")
    except (TimeoutError, ValueError, asyncio.IncompleteReadError):
        payload = None
    if path == "/oauth2/token":
        status, reply = 200, store.issue(payload)
    elif path == "/oauth2/revoke":
        status, reply = 200, store.revoke(payload)
    else:
        status, reply = 404, {"return_code": 1, "return_msg": "Not Found"}
    data = json.dumps(reply, ensure_ascii=False).encode("utf-8")
    reason = "OK" if status == 200 else "Not Found"
    writer.write(f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json;charset=UTF-8\r\n"
                 f"Content-Length: {len(data)}\r\nConnection: close\r\n\r\n".encode() + data)
    try:
        await writer.drain()
    finally:
        writer.close()
