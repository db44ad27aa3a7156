"""A local fake of an OpenAI-compatible chat-completions endpoint, for tests and local mode.

Point ``openai.AsyncOpenAI(base_url=fake.url, api_key=fake.api_key)`` at it and the
library's own code runs unmodified: ``POST /v1/chat/completions`` answers with
``choices[0].message.content`` (text or JSON for ``response_format`` requests) or
``tool_calls``, and ``usage`` token counts; errors look the way OpenAI sends them
(``{"error": {...}}``, 429 with ``Retry-After``).

Each test scripts the answers: a queue of :class:`Reply` values (``fake.script(...)``), or a
function of the request (``fake.responder = ...``). With neither, a rule-of-thumb responder
answers (the first listed enum value that occurs in the data, else the first one; a first
tool call; a few words of the data as text), which is enough for local mode. Every request
is recorded (:class:`ChatRequest`) with the API key redacted, so tests can assert what left
the bot.

Run it by hand with ``python -m bot.devtools.fake_openai --port 9998``; it prints every
request.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hmac
import json
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final, Self

from aiohttp import web

DEFAULT_API_KEY: Final = "sk-fake-0123456789"
DEFAULT_MODEL: Final = "fake-model"
_CREATED: Final = 1_700_000_000
_CHARS_PER_TOKEN: Final = 4
_PLACEHOLDER: Final = "(fake answer)"
_TEXT_ANSWER_WORDS: Final = 12
_ERROR_TYPES: Final = {
    HTTPStatus.BAD_REQUEST: "invalid_request_error",
    HTTPStatus.UNAUTHORIZED: "invalid_request_error",
    HTTPStatus.NOT_FOUND: "invalid_request_error",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limit_exceeded",
}


@dataclass(frozen=True)
class ToolCall:
    """A function call the fake answers with; ``arguments`` is sent as a JSON string."""

    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    """One scripted answer. Build it with the class methods rather than by hand.

    ``status`` other than 200 answers an OpenAI error body (``message`` its text);
    ``raw_body`` is sent verbatim as ``application/json`` (malformed JSON, a wrong shape);
    ``delay`` holds the answer back (longer than the client timeout to provoke one).
    """

    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    refusal: str | None = None
    finish_reason: str = "stop"
    status: int = HTTPStatus.OK
    message: str = ""
    retry_after: int | None = None
    raw_body: str | None = None
    delay: float = 0.0
    usage: tuple[int, int] | None = None

    @classmethod
    def text(cls, content: str, *, finish_reason: str = "stop") -> Reply:
        """Answer ``content`` as the assistant message."""
        return cls(content=content, finish_reason=finish_reason)

    @classmethod
    def json(cls, value: Any) -> Reply:
        """Answer ``value`` serialised as JSON in the message content (a structured output)."""
        return cls(content=json.dumps(value))

    @classmethod
    def tool_call(cls, name: str, **arguments: Any) -> Reply:
        """Answer with one call of tool ``name`` with ``arguments``."""
        return cls(tool_calls=(ToolCall(name, arguments),), finish_reason="tool_calls")

    @classmethod
    def tool_calls_of(cls, *calls: ToolCall) -> Reply:
        """Answer with several tool calls at once."""
        return cls(tool_calls=calls, finish_reason="tool_calls")

    @classmethod
    def refused(cls, refusal: str = "I can't help with that.") -> Reply:
        """A structured-output refusal (``message.refusal`` set, no content)."""
        return cls(refusal=refusal)

    @classmethod
    def error(
        cls, status: int, *, message: str | None = None, retry_after: int | None = None
    ) -> Reply:
        """An HTTP error as OpenAI sends it; 429 always carries ``Retry-After`` (default 1)."""
        if status < HTTPStatus.BAD_REQUEST:
            raise ValueError(f"an error reply needs a 4xx or 5xx status, got {status}")
        if status == HTTPStatus.TOO_MANY_REQUESTS and retry_after is None:
            retry_after = 1
        text = message if message is not None else HTTPStatus(status).phrase
        return cls(status=status, message=text, retry_after=retry_after)

    @classmethod
    def malformed(cls, body: str = '{"id": "chatcmpl-broken", "choices": [') -> Reply:
        """A 200 answer whose body is not valid JSON."""
        return cls(raw_body=body)

    def after(self, seconds: float) -> Reply:
        """The same answer, held back ``seconds`` (a slow model, or a timeout)."""
        return replace(self, delay=seconds)


@dataclass(frozen=True)
class ChatRequest:
    """One request the fake received, as recorded (failed and timed-out ones included).

    ``body`` is the parsed JSON body (empty when it did not parse); ``headers`` has the
    Authorization value redacted; ``status`` is what the fake answered or will answer.
    """

    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    at: float
    status: int

    @property
    def model(self) -> str:
        """The ``model`` the client asked for."""
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat messages sent, in order."""
        messages = self.body.get("messages")
        return messages if isinstance(messages, list) else []

    @property
    def response_format(self) -> dict[str, Any] | None:
        """The ``response_format`` sent, if any."""
        value = self.body.get("response_format")
        return value if isinstance(value, dict) else None

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tools offered, if any."""
        tools = self.body.get("tools")
        return tools if isinstance(tools, list) else []

    def text(self) -> str:
        """Every message's text content joined: all the words that left the bot."""
        return "\n".join(_message_text(message) for message in self.messages)


Responder = Callable[[ChatRequest], Reply]


def format_request(request: ChatRequest) -> str:
    """One terminal line describing a request (used by ``main``)."""
    last = request.messages[-1] if request.messages else {}
    preview = _message_text(last).replace("\n", " ")[:80]
    return f"[fake openai] {request.status} {request.path} model={request.model} {preview!r}"


class FakeOpenAI:
    """A fake OpenAI-compatible chat-completions server with scripting and failure injection."""

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        model: str = DEFAULT_MODEL,
        *,
        on_request: Callable[[ChatRequest], None] | None = None,
    ) -> None:
        self.api_key = api_key
        self.model = model
        self.requests: list[ChatRequest] = []
        self.responder: Responder = rule_of_thumb
        self._on_request = on_request
        self._script: deque[Reply] = deque()
        self._stopping = asyncio.Event()
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self._url: str | None = None

    # ----- lifecycle -------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Start serving; ``port=0`` binds a free ephemeral port (see ``url``)."""
        self._stopping.clear()
        runner = web.AppRunner(self._make_app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        self._url = _base_url(runner.addresses[0])

    async def stop(self) -> None:
        """Stop serving (cutting short any held-back answer) and release the port."""
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
        self._runner = None
        self._url = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def url(self) -> str:
        """The ``base_url`` for the openai library, e.g. ``http://127.0.0.1:PORT/v1``."""
        if self._url is None:
            raise RuntimeError("FakeOpenAI is not started")
        return self._url + "/v1"

    # ----- scripting -------------------------------------------------------------------

    def script(self, *replies: Reply) -> None:
        """Queue answers for the next chat-completion requests, in order.

        When the queue is empty, ``responder`` (the rule of thumb unless replaced) answers.
        """
        self._script.extend(replies)

    def fail_next(self, n: int, status: int, *, retry_after: int | None = None) -> None:
        """Answer the next ``n`` requests with HTTP ``status`` (an OpenAI error body)."""
        if n < 1:
            raise ValueError(f"n must be at least 1, got {n}")
        self.script(*[Reply.error(status, retry_after=retry_after)] * n)

    @property
    def pending(self) -> int:
        """How many scripted answers are still queued."""
        return len(self._script)

    def reset(self) -> None:
        """Forget recorded requests and queued answers; the responder stays."""
        self.requests.clear()
        self._script.clear()

    # The timeout argument is this helper's contract (tests name it), hence the noqa.
    async def wait_for_requests(self, count: int = 1, timeout: float = 5.0) -> list[ChatRequest]:  # noqa: ASYNC109
        """Wait until at least ``count`` requests were recorded; return them all."""
        async with self._changed:
            try:
                async with asyncio.timeout(timeout):
                    await self._changed.wait_for(lambda: len(self.requests) >= count)
            except TimeoutError:
                seen = len(self.requests)
                raise TimeoutError(
                    f"waited {timeout}s for {count} request(s), got {seen}"
                ) from None
        return list(self.requests)

    # ----- HTTP plumbing ---------------------------------------------------------------

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/v1/chat/completions", self._handle_chat)
        app.router.add_route("GET", "/v1/models", self._handle_models)
        return app

    async def _handle_models(self, request: web.Request) -> web.Response:
        if not self._authorised(request):
            return _error_response(HTTPStatus.UNAUTHORIZED, "Incorrect API key provided.")
        model = {"id": self.model, "object": "model", "created": _CREATED, "owned_by": "fake"}
        return web.json_response({"object": "list", "data": [model]})

    async def _handle_chat(self, request: web.Request) -> web.Response:
        body = await _json_object(request)
        received = ChatRequest(
            request.path, body or {}, _redacted_headers(request), time.monotonic(), 0
        )
        reply = self._choose_reply(request, body, received)
        recorded = replace(received, status=reply.status)
        await self._record(recorded)
        if reply.delay > 0 and await self._held_back_until_stop(reply.delay):
            return web.Response(status=HTTPStatus.SERVICE_UNAVAILABLE)
        return self._answer(reply, recorded)

    def _choose_reply(
        self, request: web.Request, body: dict[str, Any] | None, received: ChatRequest
    ) -> Reply:
        """Authentication and request shape first, as OpenAI checks them; then the script."""
        if not self._authorised(request):
            return Reply.error(HTTPStatus.UNAUTHORIZED, message="Incorrect API key provided.")
        problem = _request_problem(body)
        if problem is not None:
            return Reply.error(HTTPStatus.BAD_REQUEST, message=problem)
        if self._script:
            return self._script.popleft()
        return self.responder(received)

    def _answer(self, reply: Reply, recorded: ChatRequest) -> web.Response:
        if reply.status != HTTPStatus.OK:
            return _error_response(reply.status, reply.message, reply.retry_after)
        if reply.raw_body is not None:
            return web.Response(text=reply.raw_body, content_type="application/json")
        return web.json_response(_completion(reply, recorded, self.model))

    async def _held_back_until_stop(self, seconds: float) -> bool:
        """Wait ``seconds``; True when the fake stopped meanwhile (nobody waits any more)."""
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _record(self, request: ChatRequest) -> None:
        async with self._changed:
            self.requests.append(request)
            self._changed.notify_all()
        if self._on_request is not None:
            self._on_request(request)

    def _authorised(self, request: web.Request) -> bool:
        scheme, _, key = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(key.strip().encode(), self.api_key.encode())


# ----- the rule-of-thumb responder ------------------------------------------------------


def rule_of_thumb(request: ChatRequest) -> Reply:
    """A plausible answer without a model: enough for local mode and smoke tests.

    JSON schema: a value built from the schema, where a string enum takes the first value
    named in the data (else the first value). Tools: a call of the first tool with
    arguments built from its schema. Otherwise: the first words of the data (marker lines
    such as ``<<<DATA ...>>>`` left out).
    """
    data = _message_text(request.messages[-1]) if request.messages else ""
    schema = _json_schema(request.response_format)
    if schema is not None:
        return Reply.json(_value_for(schema, data))
    if request.tools:
        function = request.tools[0].get("function", {})
        arguments = _value_for(function.get("parameters", {}), data)
        return Reply.tool_call(str(function.get("name", "")), **arguments)
    return Reply.text(" ".join(_data_words(data)[:_TEXT_ANSWER_WORDS]) or _PLACEHOLDER)


def _data_words(text: str) -> list[str]:
    """The words of ``text`` without marker lines such as the bot's ``<<<DATA ...>>>``."""
    lines = text.splitlines()
    kept = [line for line in lines if not (line.startswith("<<<") and line.endswith(">>>"))]
    return " ".join(kept).split()


def _json_schema(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    if response_format is None or response_format.get("type") != "json_schema":
        return None
    schema = response_format.get("json_schema", {}).get("schema")
    return schema if isinstance(schema, dict) else None


def _value_for(schema: dict[str, Any], data: str) -> Any:
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        return {name: _value_for(sub, data) for name, sub in properties.items()}
    if "enum" in schema:
        return _enum_choice([str(value) for value in schema["enum"]], data)
    if kind in ("integer", "number"):
        return 0
    if kind == "boolean":
        return False
    if kind == "array":
        return []
    return _PLACEHOLDER


def _enum_choice(values: list[str], data: str) -> str:
    lowered = data.lower()
    named = [value for value in values if value.lower() in lowered]
    return (named or values or [""])[0]


# ----- response building (pure helpers) -------------------------------------------------


def _completion(reply: Reply, request: ChatRequest, default_model: str) -> dict[str, Any]:
    message = _assistant_message(reply)
    prompt, completion = reply.usage or (
        _token_estimate(request.text()),
        _token_estimate(json.dumps(message)),
    )
    return {
        "id": f"chatcmpl-fake-{len(request.text())}",
        "object": "chat.completion",
        "created": _CREATED,
        "model": request.model or default_model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {"index": 0, "message": message, "finish_reason": reply.finish_reason, "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def _assistant_message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {
        "role": "assistant",
        "content": reply.content,
        "refusal": reply.refusal,
    }
    if reply.tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for index, call in enumerate(reply.tool_calls)
        ]
    return message


def _error_response(status: int, message: str, retry_after: int | None = None) -> web.Response:
    headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
    error_type = _ERROR_TYPES.get(HTTPStatus(status), "server_error")
    body = {"error": {"message": message, "type": error_type, "param": None, "code": None}}
    return web.json_response(body, status=status, headers=headers)


def _token_estimate(text: str) -> int:
    return max(1, math.ceil(len(text) / _CHARS_PER_TOKEN))


# ----- request parsing (pure helpers) ---------------------------------------------------


async def _json_object(request: web.Request) -> dict[str, Any] | None:
    try:
        body = json.loads(await request.read())
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _request_problem(body: dict[str, Any] | None) -> str | None:
    """What OpenAI would answer 400 for, or None for a well-formed request."""
    if body is None:
        return "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    response_format = body.get("response_format")
    if response_format is not None and _json_schema_problem(response_format):
        return "Invalid 'response_format': a json_schema needs a name and a schema"
    return None


def _json_schema_problem(response_format: Any) -> bool:
    if not isinstance(response_format, dict):
        return True
    if response_format.get("type") != "json_schema":
        return False
    spec = response_format.get("json_schema")
    return not (
        isinstance(spec, dict) and spec.get("name") and isinstance(spec.get("schema"), dict)
    )


def _message_text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}, ...]
        return "\n".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _redacted_headers(request: web.Request) -> dict[str, str]:
    """Request headers to record, without the key (recorded requests get printed)."""
    hidden = {"authorization", "api-key"}
    return {
        name: "<redacted>" if name.lower() in hidden else value
        for name, value in request.headers.items()
    }


def _base_url(address: Any) -> str:
    host, port = address[0], address[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


# ----- running by hand -----------------------------------------------------------------


def _print_request(request: ChatRequest) -> None:
    print(format_request(request), flush=True)


async def _serve_forever(host: str, port: int, api_key: str, model: str) -> None:
    fake = FakeOpenAI(api_key, model, on_request=_print_request)
    await fake.start(host, port)
    print(f"[fake openai] serving base_url={fake.url} model={model}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Run the fake from the command line until interrupted, printing every request."""
    parser = argparse.ArgumentParser(description="A local fake OpenAI-compatible endpoint.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="bearer key to accept")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    options = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_forever(options.host, options.port, options.api_key, options.model))


if __name__ == "__main__":
    main()
