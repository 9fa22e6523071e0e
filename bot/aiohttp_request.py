"""python-telegram-bot's HTTP exchange over aiohttp instead of httpx (``BaseRequest``, the
library's own extension point for another HTTP library).

Why: at 20 concurrent answers, httpx and httpcore spend about 4 ms of the event loop's CPU on each
request (the pool checks every connection per request, the headers and the body go out in separate
writes); aiohttp's C parser and single write take about 0.4 ms (bench/README.md, "A lean path").
The event loop's thread is the bot's bottleneck at saturation: the model runs beside it.

It raises what PTB's ``HTTPXRequest`` raises (``TimedOut``, ``NetworkError``), with the aiohttp
error as the cause, so that :func:`bot.transport.classify_exception` can tell "not sent" from
"maybe carried out". A message never carries the bot token: aiohttp puts the URL in some of them.
"""

from __future__ import annotations

import re
import ssl
import urllib.request
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import certifi
from telegram._utils.defaultvalue import DefaultValue
from telegram.error import NetworkError, TimedOut
from telegram.request import BaseRequest, RequestData

_BOT_PATH = re.compile(r"/(file/)?bot[^/\s]+")


def _without_token(text: str) -> str:
    """``text`` with every Bot API path's token replaced (``/bot123:abc/getMe`` → ``/bot<token>/getMe``)."""
    return _BOT_PATH.sub(lambda m: f"/{m.group(1) or ''}bot<token>", text)


class AiohttpRequest(BaseRequest):
    """A ``BaseRequest`` with one aiohttp session (a pool of ``connection_pool_size`` keep-alive
    connections). Timeouts as ``HTTPXRequest``'s, in seconds, None for none: ``pool_timeout`` and
    ``connect_timeout`` bound getting a connection (aiohttp's ``connect``; exceeded: not sent),
    ``read_timeout`` each wait for the answer's bytes; aiohttp has no write timeout of its own, so
    ``write_timeout`` counts in the bound on the whole exchange."""

    def __init__(
        self,
        connection_pool_size: int = 1,
        read_timeout: float | None = 5.0,
        write_timeout: float | None = 5.0,
        connect_timeout: float | None = 5.0,
        pool_timeout: float | None = 1.0,
    ) -> None:
        self._pool_size = connection_pool_size
        self._timeouts = {
            "read": read_timeout,
            "write": write_timeout,
            "connect": connect_timeout,
            "pool": pool_timeout,
        }
        self._session: aiohttp.ClientSession | None = None
        # as PTB's HTTPXRequest: a proxy from HTTPS_PROXY/HTTP_PROXY, NO_PROXY honoured
        self._proxies = urllib.request.getproxies_environment()

    @property
    def read_timeout(self) -> float | None:
        return self._timeouts["read"]

    async def initialize(self) -> None:
        if self._session is None or self._session.closed:
            # as PTB's HTTPXRequest: certifi's certificates for https://api.telegram.org
            tls = ssl.create_default_context(cafile=certifi.where())
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._pool_size, ssl=tls),
                headers={"User-Agent": self.USER_AGENT},
                trust_env=False,  # it would read ~/.netrc on every request; proxies: _proxy_for
            )

    async def shutdown(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()

    def _proxy_for(self, url: str) -> str | None:
        """The proxy the environment named (when this object was made) for ``url``'s scheme,
        unless that environment's NO_PROXY exempts its host."""
        parts = urlsplit(url)
        bypass = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # CPython's; untyped
        if not self._proxies or bypass(parts.hostname or "", self._proxies):
            return None
        return self._proxies.get(parts.scheme)

    def _timeout(self, **given: Any) -> aiohttp.ClientTimeout:
        value = {name: self._timeouts[name] if isinstance(v, DefaultValue) else v for name, v in given.items()}
        connect = None if value["connect"] is None or value["pool"] is None else value["connect"] + value["pool"]
        parts = (connect, value["write"], value["read"])
        total = None if any(part is None for part in parts) else sum(parts)  # type: ignore[arg-type]
        return aiohttp.ClientTimeout(
            total=total, connect=connect, sock_connect=value["connect"], sock_read=value["read"]
        )

    async def do_request(
        self,
        url: str,
        method: str,
        request_data: RequestData | None = None,
        read_timeout: Any = BaseRequest.DEFAULT_NONE,
        write_timeout: Any = BaseRequest.DEFAULT_NONE,
        connect_timeout: Any = BaseRequest.DEFAULT_NONE,
        pool_timeout: Any = BaseRequest.DEFAULT_NONE,
    ) -> tuple[int, bytes]:
        await self.initialize()  # PTB initialises first; a request after shutdown opens a new session
        assert self._session is not None
        timeout = self._timeout(read=read_timeout, write=write_timeout, connect=connect_timeout, pool=pool_timeout)
        try:
            async with self._session.request(
                method,
                url,
                data=_body(request_data),
                timeout=timeout,
                allow_redirects=False,
                proxy=self._proxy_for(url),
            ) as response:
                return response.status, await response.read()
        except TimeoutError as err:  # aiohttp's ConnectionTimeoutError and SocketTimeoutError among them
            _scrub(err)
            if isinstance(err, aiohttp.ConnectionTimeoutError):
                raise TimedOut("Timed out getting a connection: the request was *not* sent") from err
            raise TimedOut from err
        except aiohttp.ClientError as err:
            _scrub(err)
            raise NetworkError(f"aiohttp.{type(err).__name__}: {_without_token(str(err))}") from err


def _body(request_data: RequestData | None) -> aiohttp.FormData | dict[str, str] | None:
    """The parameters form-encoded, as ``HTTPXRequest`` sends them; multipart when there are files."""
    if request_data is None:
        return None
    if not request_data.contains_files:
        return request_data.json_parameters
    form = aiohttp.FormData()
    for name, value in request_data.json_parameters.items():
        form.add_field(name, value)
    for name, part in request_data.multipart_data.items():
        filename, content, mimetype = part
        form.add_field(name, content, filename=filename, content_type=mimetype)
    return form


def _scrub(err: BaseException) -> None:
    """Take the token out of the aiohttp error's own message, which a traceback would show."""
    err.args = tuple(_without_token(a) if isinstance(a, str) else a for a in err.args)
