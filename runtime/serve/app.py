"""bit-serve's HTTP layer: OpenAI's endpoints and llama-server's extras, on Starlette.

Handlers never run the model: they validate the request, hand a Job to the engine's
scheduler thread, and read its events from an asyncio.Queue that the scheduler fills with
loop.call_soon_threadsafe. A client that goes away cancels its job (the scheduler frees
the slot at its next step). Every error is an OpenAI-shaped error object.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..model import ContextFullError
from .engine import Engine, LoadedModel, NotReadyError, QueueFullError
from .jobs import DoneEvent, Event, GenerationParams, Job, TokenEvent
from .responses import ResponseBuilder
from .schemas import (
    ChatRequest,
    CompletionRequest,
    DetokenizeRequest,
    RequestError,
    TokenizeRequest,
    parse,
)

RETRY_AFTER_SECONDS = 1  # what a client refused for a full queue is told to wait
PUBLIC_PATHS = frozenset(("/health", "/v1/health"))  # answered without the API key


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        kind: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.kind, self.param = status, message, kind, param
        self.headers = headers

    def response(self) -> JSONResponse:
        return error_response(self.status, self.message, self.kind, self.param, self.headers)


def error_response(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": status}}
    return JSONResponse(body, status_code=status, headers=headers)


class Server:
    """The routes, bound to one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def model(self) -> LoadedModel:
        model = self.engine.model
        if model is None or self.engine.state != "ready":
            raise ApiError(503, self.engine.error or "Loading model", "unavailable_error")
        return model

    # -- plain endpoints ------------------------------------------------------------------

    async def health(self, request: Request) -> Response:
        if self.engine.state == "ready":
            return JSONResponse({"status": "ok"})
        message = self.engine.error or "Loading model"
        return error_response(503, message, "unavailable_error")

    async def models(self, request: Request) -> Response:
        model = self.model()
        info = model.native.info
        entry = {
            "id": model.name,
            "object": "model",
            "created": int(model.native.path.stat().st_mtime),
            "owned_by": "bitllm",
            "meta": {"n_ctx_slot": model.slot_ctx, "n_ctx_train": info.n_ctx_train,
                     "n_vocab": info.n_vocab, "n_embd": info.n_embd, "size": info.file_bytes},
        }  # fmt: skip
        return JSONResponse({"object": "list", "data": [entry]})

    async def metrics(self, request: Request) -> Response:
        return PlainTextResponse(
            self.engine.metrics.render(), media_type="text/plain; version=0.0.4"
        )

    async def tokenize(self, request: Request) -> Response:
        req = parse(TokenizeRequest, await request.body())
        tokenizer = self.model().tokenizer
        try:
            ids = tokenizer.encode(req.content, req.add_special, req.parse_special)
        except ValueError as e:
            raise RequestError(str(e), "content") from None
        if not req.with_pieces:
            return JSONResponse({"tokens": ids})
        return JSONResponse({"tokens": [{"id": i, "piece": _piece(tokenizer, i)} for i in ids]})

    async def detokenize(self, request: Request) -> Response:
        req = parse(DetokenizeRequest, await request.body())
        tokenizer = self.model().tokenizer
        bad = [t for t in req.tokens if not 0 <= t < tokenizer.n_vocab]
        if bad:
            raise RequestError(
                f"token id {bad[0]} is outside the vocabulary of {tokenizer.n_vocab}", "tokens"
            )
        return JSONResponse({"content": tokenizer.decode(req.tokens)})

    # -- generation -----------------------------------------------------------------------

    async def completions(self, request: Request) -> Response:
        req = parse(CompletionRequest, await request.body())
        model = self.model()
        prompt = req.prompt_text_or_ids()
        try:
            ids = model.completion_ids(prompt) if isinstance(prompt, str) else prompt
        except ValueError as e:
            raise RequestError(str(e), "prompt") from None
        bad = [t for t in ids if not 0 <= t < model.sample_vocab]
        if bad:
            raise RequestError(f"prompt token id {bad[0]} is outside the vocabulary", "prompt")
        builder = ResponseBuilder(
            False, model.name, model.tokenizer, req.logprobs is not None, req.include_usage
        )
        return await self._generate(request, ids, req.params(), builder, req.stream, "prompt")

    async def chat_completions(self, request: Request) -> Response:
        req = parse(ChatRequest, await request.body())
        model = self.model()
        try:
            ids = model.chat_ids(req.conversation())
        except ValueError as e:  # a template that refuses the conversation, bad text
            raise RequestError(str(e), "messages") from None
        builder = ResponseBuilder(
            True, model.name, model.tokenizer, req.logprobs, req.include_usage
        )
        return await self._generate(request, ids, req.params(), builder, req.stream, "messages")

    async def _generate(
        self,
        request: Request,
        ids: list[int],
        params: GenerationParams,
        builder: ResponseBuilder,
        stream: bool,
        prompt_field: str,
    ) -> Response:
        if not ids:
            raise RequestError("the prompt is empty", prompt_field)
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[Event] = asyncio.Queue()
        job = Job(ids, params, lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
        try:
            self.engine.submit(job)
        except ContextFullError as e:
            raise RequestError(str(e), prompt_field) from None
        except QueueFullError as e:
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            raise ApiError(503, str(e), "unavailable_error", headers=headers) from None
        except NotReadyError as e:
            raise ApiError(503, str(e), "unavailable_error") from None
        if stream:
            return StreamingResponse(
                _sse(job, events, builder),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        done = await _collect(job, events, builder, request.receive)
        if done is None:  # the client left; nobody reads this
            return Response(status_code=499)
        if done.finish_reason not in ("stop", "length"):
            return _ending_error(done)
        return JSONResponse(builder.whole(done))


def _piece(tokenizer: Any, token: int) -> str | list[int]:
    """llama-server's piece: the token's text, or its bytes when they are not UTF-8."""
    data = tokenizer.token_to_piece(token, special=True)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return list(data)


def _ending_error(done: DoneEvent) -> JSONResponse:
    if done.finish_reason == "shutdown":
        return error_response(503, "the server is shutting down", "unavailable_error")
    return error_response(500, done.error or f"generation {done.finish_reason}", "server_error")


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _collect(
    job: Job, events: asyncio.Queue[Event], builder: ResponseBuilder, receive: Receive
) -> DoneEvent | None:
    """Reads a job's events into builder; None when the client disconnects first (the job
    is cancelled)."""
    gone = asyncio.ensure_future(_wait_disconnect(receive))
    try:
        while True:
            event = asyncio.ensure_future(events.get())
            await asyncio.wait({event, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not event.done():
                event.cancel()
                return None
            result = event.result()
            if isinstance(result, DoneEvent):
                return result
            builder.add(result)
    finally:
        gone.cancel()
        job.cancel()  # a no-op once the job is done


def _data(payload: Any) -> str:
    return f"data: {json.dumps(payload, separators=(',', ':'))}\n\n"


async def _sse(
    job: Job, events: asyncio.Queue[Event], builder: ResponseBuilder
) -> AsyncIterator[str]:
    """Server-sent events; Starlette cancels this generator when the client disconnects,
    and the finally clause cancels the job."""
    try:
        for chunk in builder.start_chunks():
            yield _data(chunk)
        while True:
            event = await events.get()
            if isinstance(event, TokenEvent):
                for chunk in builder.token_chunks(event):
                    yield _data(chunk)
                continue
            if event.finish_reason in ("stop", "length"):
                for chunk in builder.done_chunks(event):
                    yield _data(chunk)
            else:
                yield _data(json.loads(_ending_error(event).body))
            yield "data: [DONE]\n\n"
            return
    finally:
        job.cancel()


class ApiKeyMiddleware:
    """With --api-key, every path but the health check needs `Authorization: Bearer KEY`
    (what the openai package sends) or `X-Api-Key: KEY`."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self.api_key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        bearer = headers.get("authorization", "")
        given = bearer[7:] if bearer.lower().startswith("bearer ") else headers.get("x-api-key")
        if given != self.api_key:
            response = error_response(401, "invalid or missing API key", "authentication_error")
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _handle(
    handler: Callable[[Request], Awaitable[Response]],
) -> Callable[[Request], Awaitable[Response]]:
    """Turns the errors a handler raises into OpenAI-shaped error responses."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except RequestError as e:
            return error_response(400, str(e), param=e.param)
        except ApiError as e:
            return e.response()

    return wrapped


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = f"{request.method} {request.url.path}: {exc.detail}"
    return error_response(exc.status_code, message, "invalid_request_error")


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, f"{type(exc).__name__}: {exc}", "server_error")


def create_app(
    engine: Engine,
    api_key: str | None = None,
    on_load_failure: Callable[[str], None] | None = None,
) -> ASGIApp:
    """The ASGI app. Its lifespan starts the engine (the model loads in the scheduler
    thread, /health answers 503 meanwhile; on_load_failure(message) if it cannot) and
    stops it at shutdown."""
    server = Server(engine)
    get, post = ["GET"], ["POST"]
    routes = [
        Route("/health", _handle(server.health), methods=get),
        Route("/v1/health", _handle(server.health), methods=get),
        Route("/v1/models", _handle(server.models), methods=get),
        Route("/models", _handle(server.models), methods=get),
        Route("/metrics", _handle(server.metrics), methods=get),
        Route("/v1/completions", _handle(server.completions), methods=post),
        Route("/completions", _handle(server.completions), methods=post),
        Route("/v1/chat/completions", _handle(server.chat_completions), methods=post),
        Route("/chat/completions", _handle(server.chat_completions), methods=post),
        Route("/tokenize", _handle(server.tokenize), methods=post),
        Route("/detokenize", _handle(server.detokenize), methods=post),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if engine.state == "loading":
            engine.start(load=True, on_failure=on_load_failure)
        yield
        await asyncio.get_running_loop().run_in_executor(None, engine.stop)

    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    return ApiKeyMiddleware(app, api_key) if api_key else app
