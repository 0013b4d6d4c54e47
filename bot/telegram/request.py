"""The bot's HTTP client for the Bot API: PTB's ``BaseRequest`` over aiohttp.

PTB's own ``HTTPXRequest`` goes through httpx, httpcore, h11 and anyio; against the Bot
API that stack costs several milliseconds of CPU per call (``bench/bench_request.py``
measures one beside the other), and an update makes two or three calls (answering the
button, the card, taking the old card's buttons off). aiohttp is already the bot's
webhook server. PTB keeps everything else: the parameters it builds
(``RequestData``), the answer's parsing and its errors (``BaseRequest.post``), the rate
limiter, the retries. Only ``do_request`` is here: send (a JSON body; a call with files
as a multipart form), and return the status and the body; a timeout is PTB's
``TimedOut``, any other failure of the connection its ``NetworkError``, as
``HTTPXRequest`` raises them. :func:`bot.telegram.app.build_application` gives the bot
two: one for its calls (256 connections, PTB's default) and one for ``getUpdates`` (one
connection)."""
from __future__ import annotations

import asyncio
import json
import ssl
import warnings
from contextvars import ContextVar

import aiohttp
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData


# A few calls go out with do_api_request on purpose, answered as the Bot API's JSON:
# the data-entry card (handlers.markup.show_card) and the intake's getUpdates
# (bot.telegram.intake.Intake._get_updates). PTB suggests its own methods for them.
warnings.filterwarnings(
    "ignore",
    message=r"Please use 'Bot\.(editMessageText|sendMessage|editMessageReplyMarkup|getUpdates)'")


_JSON = {"Content-Type": "application/json"}

# The call being made by this task (the update's run, or any other task): its JSON body,
# encoded once for both the call journal's key (``bot.telegram.intake.call_key``) and
# the request; and, when the journal asks for it (:func:`answer_bodies`), a list that
# gets each body Telegram answered with, beside the call's request data, which the
# journal writes as it came instead of encoding the parsed answer again.
_BODY: ContextVar[tuple[object, bytes] | None] = ContextVar("sopbot_call_body", default=None)
_ANSWERS: ContextVar[list[tuple[object, bytes]] | None] = ContextVar("sopbot_call_answers",
                                                                    default=None)


def json_body(request_data: RequestData | None) -> bytes | None:
    """The JSON body of a call without files (``None`` for a call without parameters,
    or with files: a multipart form), encoded once per call: kept for this task until
    its next call, and found again by identity (``do_request`` gets the same object)."""
    held = _BODY.get()
    if held is not None and held[0] is request_data:
        return held[1]
    if request_data is None or request_data.contains_files:
        return None
    params = request_data.parameters
    if not params:
        return None
    body = json.dumps(params, ensure_ascii=False).encode()
    _BODY.set((request_data, body))
    return body


def answer_bodies() -> list[tuple[object, bytes]]:
    """From now on in this task (and the tasks it starts), the body of every answer
    ``AiohttpRequest.do_request`` reads is appended, with the call's request data, to
    the list returned (:func:`answer_body` finds a call's)."""
    bodies: list[tuple[object, bytes]] = []
    _ANSWERS.set(bodies)
    return bodies


def answer_body(bodies: list[tuple[object, bytes]], request_data) -> bytes | None:
    """The body of the last answer to the call of ``request_data`` in ``bodies`` (a
    retry's earlier answers come before it), or None."""
    for data, body in reversed(bodies):
        if data is request_data:
            return body
    return None


def _tls_context() -> ssl.SSLContext:
    """The certificates HTTPXRequest trusts (certifi's bundle, which httpx, a
    dependency of PTB, brings), not the machine's store, which a slim server may lack."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - httpx depends on it
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())


class AiohttpRequest(BaseRequest):
    """One aiohttp session with at most ``connection_pool_size`` connections; timeouts
    in seconds as ``HTTPXRequest``'s (``None``: no limit)."""

    __slots__ = ("_session", "_pool", "_read", "_write", "_connect", "_pool_timeout",
                 "_media_write")

    def __init__(self, connection_pool_size: int = 256, read_timeout: float | None = 5.0,
                 write_timeout: float | None = 5.0, connect_timeout: float | None = 5.0,
                 pool_timeout: float | None = 1.0, media_write_timeout: float | None = 20.0
                 ) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._pool = connection_pool_size
        self._read, self._write = read_timeout, write_timeout
        self._connect, self._pool_timeout = connect_timeout, pool_timeout
        self._media_write = media_write_timeout

    @property
    def read_timeout(self) -> float | None:
        return self._read

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool, ssl=_tls_context()),
                headers={"User-Agent": self.USER_AGENT})

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def do_request(self, url: str, method: str, request_data: RequestData | None = None,
                         read_timeout=BaseRequest.DEFAULT_NONE,
                         write_timeout=BaseRequest.DEFAULT_NONE,
                         connect_timeout=BaseRequest.DEFAULT_NONE,
                         pool_timeout=BaseRequest.DEFAULT_NONE) -> tuple[int, bytes]:
        if self._session is None or self._session.closed:
            raise RuntimeError("This AiohttpRequest is not initialized!")
        files = request_data.multipart_data if request_data is not None \
            and request_data.contains_files else None
        if isinstance(read_timeout, DefaultValue):
            read_timeout = self._read
        if isinstance(write_timeout, DefaultValue):
            write_timeout = self._write if not files else self._media_write
        if isinstance(connect_timeout, DefaultValue):
            connect_timeout = self._connect
        if isinstance(pool_timeout, DefaultValue):
            pool_timeout = self._pool_timeout
        headers = None
        if files:
            data = aiohttp.FormData(quote_fields=False)
            for name, value in request_data.json_parameters.items():
                data.add_field(name, value)
            for name, part in files.items():
                if isinstance(part, tuple):  # (file name, bytes, mime type)
                    data.add_field(name, part[1], filename=part[0], content_type=part[2])
                else:
                    data.add_field(name, part)
        else:
            # a JSON body, which the Bot API takes for every method (files aside): one
            # encoding of the parameters, where a form encodes each one to JSON and then
            # URL-quotes the whole (a card's text and keyboard), as HTTPXRequest does
            data = json_body(request_data)
            headers = _JSON if data is not None else None
        # aiohttp has no separate write timeout: the time to send the body and get the
        # head of the answer is bounded by the sum of the two
        read = None if read_timeout is None or write_timeout is None \
            else read_timeout + write_timeout
        connect = None if pool_timeout is None or connect_timeout is None \
            else pool_timeout + connect_timeout  # a free connection, then connecting
        timeout = aiohttp.ClientTimeout(total=None, connect=connect,
                                        sock_connect=connect_timeout, sock_read=read)
        try:
            async with self._session.request(method, url, data=data, headers=headers,
                                             timeout=timeout) as res:
                body = await res.read()
            answers = _ANSWERS.get()
            if answers is not None:
                answers.append((request_data, body))
            return res.status, body
        except asyncio.TimeoutError as exc:
            raise TimedOut() from exc
        except aiohttp.ClientError as exc:
            raise NetworkError(f"aiohttp.{exc.__class__.__name__}: {exc}") from exc
