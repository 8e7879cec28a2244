"""The wire of :class:`~ratetree.state.redis_async.AsyncRedisState`: scripts written as
one pipeline on one connection of a ``redis.asyncio`` client, and their replies read back
and numbered in the order Redis ran them (the numbering ``RedisState`` keeps with its
lock), plus what a :class:`RedisTrip` makes of them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ratetree.state.redis_trips import RedisTrip, ScriptCall

__all__ = ["Result", "Wire", "calls_of", "fill"]

#: what a script came back as: its reply (numbered, see ``Wire.run``) or the error
Result = list[Any] | Exception


def calls_of(trip: RedisTrip) -> list[ScriptCall]:
    """The scripts ``trip`` sends, in order: its queued releases, then its main script."""
    calls = [call for _, call in trip.sends]
    if trip.main is not None:
        calls.append(trip.main)
    return calls


def fill(trip: RedisTrip, results: list[Result]) -> None:
    """Keep what the scripts of ``trip`` came back as, as ``RedisTrip.run`` does: its
    queued releases up to the first error, then its main script."""
    count = len(trip.sends)
    for result in results[:count]:
        if isinstance(result, Exception):
            trip.error = result
            break
        trip.delivered.append(result)
    if trip.main is not None:
        # Pipelined with the releases before it, so it was sent even if one of them failed
        # (a refused release whose commit ran is rare: releases free memory, commits take it).
        trip.sent = True
        main = results[count]
        if isinstance(main, Exception):
            trip.error = trip.error or main
        elif trip.error is None:
            trip.reply = main


class Wire:
    """Sends scripts for one process. ``client`` is a ``redis.asyncio`` client (replaced
    when the state reconnects); ``clock`` as ``RedisState.clock``."""

    __slots__ = ("answered", "client", "clock", "no_script", "pack", "ran", "sent")

    def __init__(self, client: Any, clock: Callable[[], float] | None) -> None:
        import redis  # the optional dependency

        self.client = client
        self.clock = clock
        self.no_script = redis.exceptions.NoScriptError
        self.answered = redis.exceptions.ResponseError
        self.pack: Callable[[tuple[Any, ...]], bytes] | None = None
        try:
            from hiredis import pack_command

            self.pack = pack_command
        except ImportError:  # pragma: no cover - hiredis comes with the redis extra
            pass
        self.ran = 0  # scripts this process sent, numbered in the order Redis ran them
        #: pipelines sent: the network round trips
        self.sent = 0

    async def run(self, calls: list[ScriptCall]) -> list[Result]:
        """What each of ``calls`` came back as: its reply, numbered in the order Redis ran
        this process's scripts, or an error. Runs them in one pipeline (two when Redis lost
        the scripts: they are loaded and the refused ones sent again, after the others)."""
        results: list[Result | None] = [None] * len(calls)
        todo = list(range(len(calls)))
        for attempt in range(2):
            commands = []
            sent = []
            for i in todo:
                call = calls[i]
                try:
                    keys, args = call.keys_args(self.clock)
                except Exception as err:  # the clock raised: this script is not sent
                    results[i] = err
                    continue
                commands.append(("EVALSHA", call.script.sha, len(keys), *keys, *args))
                sent.append(i)
            if not sent:
                break
            replies = await self.exchange(commands)
            todo = []
            for i, reply in zip(sent, replies, strict=True):
                if isinstance(reply, self.no_script) and attempt == 0:
                    todo.append(i)
                elif isinstance(reply, Exception):
                    results[i] = reply
                else:
                    self.ran += 1
                    results[i] = [*reply, self.ran]
            if not todo:
                break
            try:
                for script in {calls[i].script.sha: calls[i].script for i in todo}.values():
                    await self.client.script_load(script.script)
            except Exception as err:
                for i in todo:
                    results[i] = err
                break
        return [r if r is not None else RuntimeError("not sent") for r in results]

    async def exchange(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Write ``commands`` at once on one connection and read their replies: each a
        reply, or the error Redis answered, or (from a broken connection on) the client's
        error. Packed by hiredis when it is there (redis-py's asyncio packer is Python)."""
        self.sent += 1
        pool = self.client.connection_pool
        replies: list[Any] = []
        try:
            connection = await pool.get_connection()
        except Exception as err:
            return [err] * len(commands)
        try:
            if self.pack is not None:
                packed: Any = b"".join(map(self.pack, commands))
            else:
                packed = connection.pack_commands(commands)
            await connection.send_packed_command(packed, check_health=False)
            for _ in commands:
                try:
                    replies.append(await connection.read_response())
                except self.answered as err:  # Redis answered this one with an error
                    replies.append(err)
        except Exception as err:  # the connection: what was not read is not known to have run
            replies += [err] * (len(commands) - len(replies))
        finally:
            await pool.release(connection)
        return replies
