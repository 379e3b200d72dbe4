"""The browser control surface's web server (``play --ui``): the page, its WebSocket, presets.

It runs in the player's process, on an asyncio event loop in a thread of its own (aiohttp), and
reaches the instrument only through ``ui_surface.Surface``: the audio process and its callback
never see it. The state goes to every open page as a small JSON snapshot ``PUSH_HZ`` times a
second when it changed (so a controller moved on a MIDI keyboard shows within two ticks), the
current latent when the timbre changes, and the spectrogram of each new note.

Security, for a server that plays and writes files on the player's machine:
- it binds 127.0.0.1 unless told otherwise (the caller warns);
- every request needs the random token in the URL (``?token=``), compared in constant time;
- a WebSocket or a POST from a page of another origin is refused (403), so another site open in
  the same browser cannot drive the instrument or save files;
- it serves only its own four files (page, script, style, icon), by fixed names; presets are
  saved and renamed by validated names (``ui_surface``), never by a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import threading
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web

from gansynth_instrument.errors import DeviceError, GansynthError
from gansynth_instrument.surfaces.ui_surface import Surface

LOCALHOST = "127.0.0.1"
PUSH_HZ = 30
MAX_MESSAGE_BYTES = 64 * 1024  # a drawn latent is ~3 KB of JSON
START_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 1.0  # at the player's exit, an open page's connection is waited for no longer
STATIC = {  # URL path → (file in gansynth_instrument/ui, content type)
    "/": ("index.html", "text/html"),
    "/app.js": ("app.js", "text/javascript"),
    "/style.css": ("style.css", "text/css"),
    "/icon.svg": ("icon.svg", "image/svg+xml"),  # the page names it: no /favicon.ico request
}
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; connect-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class UiServer:
    """Serves ``surface``'s page on ``host``:``port`` (0: a free port) from a thread of its own;
    ``start()`` returns once it listens (``url`` then holds the address with its token),
    ``close()`` stops it. A port that cannot be bound is a DeviceError."""

    def __init__(
        self,
        surface: Surface,
        *,
        host: str = LOCALHOST,
        port: int = 0,
        token: str | None = None,
    ) -> None:
        self.surface = surface
        self.host = host
        self.port = port
        self.token = token or secrets.token_urlsafe(24)
        self._files = {
            path: (resources.files("gansynth_instrument.surfaces") / "ui" / name).read_text("utf-8")
            for path, (name, _) in STATIC.items()
        }
        self._clients: set[web.WebSocketResponse] = set()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/?token={self.token}"

    def start(self) -> UiServer:
        self._thread = threading.Thread(target=self._run, name="ui-server", daemon=True)
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT_S):
            raise DeviceError(f"--ui: the web server did not start within {START_TIMEOUT_S:g} s")
        if self._error is not None:
            raise DeviceError(
                f"--ui: cannot serve on {self.host}:{self.port} ({self._error})"
            ) from None
        return self

    def close(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):  # the loop ended already
                self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=START_TIMEOUT_S)

    def __enter__(self) -> UiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the server thread ------------------------------------------------------------------------

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._serve())
        except BaseException as err:  # reported by start(), or ended with the player
            self._error = err
        finally:
            self._ready.set()
            loop.close()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_MESSAGE_BYTES)
        for path in STATIC:
            app.router.add_get(path, self._static)
        app.router.add_get("/ws", self._websocket)
        app.router.add_post("/presets/save", self._save)
        app.router.add_post("/presets/rename", self._rename)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT_S)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self.host, self.port)
            await site.start()
            self.port = runner.addresses[0][1]
            self._ready.set()
            pusher = asyncio.create_task(self._push())
            await self._stop.wait()
            pusher.cancel()
            for ws in list(self._clients):
                await ws.close()
        finally:
            await runner.cleanup()

    def _origins(self, request: web.Request) -> set[str]:
        """The page's own origins: the address it is served on (and localhost's two names);
        served beyond this machine (``--ui-host``), also the name the browser reached it by."""
        hosts = {self.host}
        if self.host in (LOCALHOST, "localhost"):
            hosts |= {LOCALHOST, "localhost"}
        origins = {f"http://{h}:{self.port}" for h in hosts}
        if self.host not in (LOCALHOST, "localhost", "::1"):
            origins.add(f"http://{request.host}")
        return origins

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """The token on every request; the page's own origin on anything that acts."""
        token = request.query.get("token", "")
        if not secrets.compare_digest(token.encode(), self.token.encode()):
            return web.Response(status=403, text="wrong or missing token\n")
        acts = request.method != "GET" or request.path == "/ws"
        origin = request.headers.get("Origin")
        if acts and origin is not None and origin not in self._origins(request):
            return web.Response(status=403, text=f"origin {origin} refused\n")
        return await handler(request)

    async def _static(self, request: web.Request) -> web.Response:
        name, content_type = STATIC[request.path]
        text = self._files[request.path]
        if name == "index.html":
            text = text.replace("{{token}}", self.token)
        return web.Response(text=text, content_type=content_type, headers=HEADERS)

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=MAX_MESSAGE_BYTES, timeout=CLOSE_TIMEOUT_S)
        await ws.prepare(request)
        loop = asyncio.get_running_loop()
        surface = self.surface
        try:
            await ws.send_json({"type": "config", **surface.config()})
            listed = await loop.run_in_executor(None, surface.presets)
            await ws.send_json({"type": "presets", "list": listed})
            await ws.send_json({"type": "latent", **surface.latent()})
            await ws.send_json({"type": "state", **surface.snapshot()})
            played = surface.last_note()
            if played is not None:
                spectrogram = await loop.run_in_executor(None, surface.spectrogram, played)
                await ws.send_json({"type": "spectrogram", **spectrogram})
        except ConnectionResetError:  # the page closed or reloaded while it was greeted
            return ws
        self._clients.add(ws)
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    action = json.loads(msg.data)
                    if not isinstance(action, dict):
                        raise GansynthError("a page action is a JSON object")
                    surface.act(action)  # here, not in an executor: a key press plays at once
                except (GansynthError, ValueError) as err:
                    await ws.send_json({"type": "error", "message": str(err)})
        finally:
            self._clients.discard(ws)
        return ws

    async def _save(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return await self._preset_change(self.surface.save, body.get("name"))

    async def _rename(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        return await self._preset_change(self.surface.rename, body.get("name"), body.get("new"))

    async def _preset_change(self, change: Any, *names: object) -> web.Response:
        """Run a preset file change off the loop; 400 with its one line if refused."""
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(None, change, *names)
        except GansynthError as err:
            return web.json_response({"error": str(err)}, status=400)
        listed = await loop.run_in_executor(None, self.surface.presets)
        await self._broadcast({"type": "presets", "list": listed})
        return web.json_response({"saved": path.stem})

    async def _broadcast(self, message: dict[str, Any]) -> None:
        await self._send_all(json.dumps(message))

    async def _send_all(self, text: str) -> None:
        for ws in list(self._clients):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(text)

    async def _push(self) -> None:
        """Send the state when it changed, the latent when the timbre changed, and each new
        note's spectrogram, ``PUSH_HZ`` times a second while a page is open."""
        loop = asyncio.get_running_loop()
        last_state, last_key, last_played = "", "", self.surface.last_note()
        while True:
            await asyncio.sleep(1 / PUSH_HZ)
            if not self._clients:
                continue
            state = self.surface.snapshot()
            text = json.dumps({"type": "state", **state})
            if text != last_state:
                last_state = text
                await self._send_all(text)
            if state["timbre_key"] != last_key:
                last_key = state["timbre_key"]
                await self._broadcast({"type": "latent", **self.surface.latent()})
            played = self.surface.last_note()
            if played is not None and played is not last_played:
                last_played = played
                spectrogram = await loop.run_in_executor(None, self.surface.spectrogram, played)
                await self._broadcast({"type": "spectrogram", **spectrogram})


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise web.HTTPBadRequest(text="expected a JSON object\n") from None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(text="expected a JSON object\n")
    return body
