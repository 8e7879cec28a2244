"""A loopback OpenAI-compatible provider for the proxy tests: the proxy's deployments call it
(``api_base``) instead of answering with ``mock_response``, so the tests can count, on the
provider's side, how many requests each model got and how many were in flight at once.

It runs an aiohttp server on its own event loop in a thread of the test process. A chat
completion waits ``delay`` seconds, then answers; a stream sends ``chunks`` chunks
``chunk_delay`` seconds apart, and keeps sending them to whoever still reads (LiteLLM reads
a provider's stream to its end after its own client went away).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

from aiohttp import web

from proxy_process import free_port


class FakeProvider:
    """``/v1/chat/completions`` on ``127.0.0.1``: :attr:`total` requests and :attr:`peak`
    requests in flight per model name (as the request names it), :attr:`streaming` streams
    being sent now. Start with :meth:`start`, stop with :meth:`stop`."""

    def __init__(self, *, delay: float = 0.0, chunks: int = 3, chunk_delay: float = 0.0) -> None:
        self.delay = delay
        self.chunks = chunks
        self.chunk_delay = chunk_delay
        self.port = free_port()
        self.total: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.streaming = 0
        self._in_flight: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self) -> None:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(timeout=30)

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """(total requests, peak in flight) per model, as plain dicts."""
        with self._lock:
            return dict(self.total), dict(self.peak)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body: dict[str, Any] = await request.json()
        model = str(body.get("model"))
        with self._lock:
            self.total[model] += 1
            self._in_flight[model] += 1
            self.peak[model] = max(self.peak[model], self._in_flight[model])
        try:
            if body.get("stream"):
                return await self._stream(request, model)
            await asyncio.sleep(self.delay)
            return web.json_response(_completion(model))
        finally:
            with self._lock:
                self._in_flight[model] -= 1

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        with self._lock:
            self.streaming += 1
        try:
            for i in range(self.chunks):
                last = i == self.chunks - 1
                await response.write(_event(_chunk(model, f"{i} ", last)))
                await asyncio.sleep(0 if last else self.chunk_delay)
            await response.write(b"data: [DONE]\n\n")
        except (ConnectionError, RuntimeError):
            pass  # the reader went away
        finally:
            with self._lock:
                self.streaming -= 1
        return response


def serving(
    *, delay: float = 0.0, chunks: int = 3, chunk_delay: float = 0.0
) -> Iterator[FakeProvider]:
    """A started :class:`FakeProvider`, stopped after: for a fixture to ``yield from``."""
    server = FakeProvider(delay=delay, chunks=chunks, chunk_delay=chunk_delay)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _event(payload: dict[str, Any]) -> bytes:
    return f"data: {json.dumps(payload)}\n\n".encode()


def _completion(model: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"answer from {model}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5},
    }


def _chunk(model: str, text: str, last: bool) -> dict[str, Any]:
    chunk: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 0,
        "model": model,
        "choices": [
            {"index": 0, "delta": {"content": text}, "finish_reason": "stop" if last else None}
        ],
    }
    if last:
        chunk["usage"] = {"prompt_tokens": 1, "completion_tokens": 4, "total_tokens": 5}
    return chunk
