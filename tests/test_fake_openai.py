"""The fake OpenAI-compatible endpoint, exercised over real HTTP through the openai library."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from bot.devtools.fake_openai import (
    DEFAULT_API_KEY,
    ChatRequest,
    FakeOpenAI,
    Reply,
    ToolCall,
    format_request,
    rule_of_thumb,
)

SCHEMA_FORMAT: Any = {
    "type": "json_schema",
    "json_schema": {
        "name": "category",
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {"label": {"type": "string", "enum": ["sales", "support", "billing"]}},
            "required": ["label"],
            "additionalProperties": False,
        },
    },
}
TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "ask_question",
            "parameters": {
                "type": "object",
                "properties": {"question": {"type": "string"}},
                "required": ["question"],
            },
        },
    }
]


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake.url, api_key=DEFAULT_API_KEY, timeout=5.0, max_retries=0
    ) as opened:
        yield opened


async def ask(client: openai.AsyncOpenAI, text: str = "hello", **extra: Any) -> Any:
    return await client.chat.completions.create(
        model="test-model", messages=[{"role": "user", "content": text}], **extra
    )


async def api_error(call: Any) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as caught:
        await call
    return caught.value


# ----- lifecycle and plumbing ------------------------------------------------------------


async def test_url_is_an_ephemeral_local_v1_base_url(fake: FakeOpenAI) -> None:
    assert fake.url.startswith("http://127.0.0.1:")
    assert fake.url.endswith("/v1")


async def test_url_before_start_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        _ = FakeOpenAI().url


async def test_models_lists_the_configured_model(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.url, api_key=DEFAULT_API_KEY) as client:
        models = await client.models.list()
    assert [model.id for model in models.data] == ["fake-model"]


async def test_a_wrong_key_is_answered_401_as_openai_does(fake: FakeOpenAI) -> None:
    async with openai.AsyncOpenAI(base_url=fake.url, api_key="sk-wrong", max_retries=0) as bad:
        error = await api_error(ask(bad))
    assert isinstance(error, openai.AuthenticationError)
    assert fake.requests[0].status == 401


async def test_a_request_without_messages_is_answered_400(fake: FakeOpenAI) -> None:
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            fake.url + "/chat/completions",
            json={"model": "m", "messages": []},
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        )
        body = await response.json()
    assert response.status == 400
    assert "messages" in body["error"]["message"]


# ----- scripted answers ------------------------------------------------------------------


async def test_a_json_reply_is_the_message_content_with_usage(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.json({"label": "support"}))
    completion = await ask(client, response_format=SCHEMA_FORMAT)
    assert json.loads(completion.choices[0].message.content) == {"label": "support"}
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage.prompt_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


async def test_a_tool_call_reply_carries_json_arguments(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.tool_call("propose_command", command="/trigger list"))
    completion = await ask(client, tools=TOOLS)
    message = completion.choices[0].message
    assert message.content is None
    assert message.tool_calls[0].function.name == "propose_command"
    assert json.loads(message.tool_calls[0].function.arguments) == {"command": "/trigger list"}
    assert completion.choices[0].finish_reason == "tool_calls"


async def test_several_tool_calls_in_one_reply(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.tool_calls_of(ToolCall("a", {}), ToolCall("b", {"x": 1})))
    completion = await ask(client)
    assert [call.function.name for call in completion.choices[0].message.tool_calls] == [
        "a",
        "b",
    ]


async def test_a_refusal_and_a_length_cut_are_reported_as_openai_does(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.refused("no"), Reply.text("half a sen", finish_reason="length"))
    refused = await ask(client)
    cut = await ask(client)
    assert refused.choices[0].message.refusal == "no"
    assert cut.choices[0].finish_reason == "length"


async def test_explicit_usage_is_reported(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply(content="ok", usage=(1000, 234)))
    completion = await ask(client)
    assert completion.usage.total_tokens == 1234


async def test_scripted_replies_are_used_in_order_then_the_responder(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.text("one"), Reply.text("two"))
    fake.responder = lambda request: Reply.text(f"echo {request.messages[-1]['content']}")
    answers = [(await ask(client, "three")).choices[0].message.content for _ in range(3)]
    assert answers == ["one", "two", "echo three"]
    assert fake.pending == 0


# ----- failure injection -----------------------------------------------------------------


async def test_429_carries_retry_after(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply.error(429, retry_after=7))
    error = await api_error(ask(client))
    assert isinstance(error, openai.RateLimitError)
    assert error.response.headers["retry-after"] == "7"


async def test_429_without_retry_after_given_still_sends_one(fake: FakeOpenAI) -> None:
    fake.fail_next(1, 429)
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            fake.url + "/chat/completions",
            json={"model": "m", "messages": [{"role": "user", "content": "x"}]},
            headers={"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        )
        body = await response.json()
    assert response.status == 429
    assert response.headers["Retry-After"] == "1"
    assert body["error"]["type"] == "rate_limit_exceeded"


async def test_fail_next_answers_n_errors_then_recovers(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.fail_next(2, 500)
    for _ in range(2):
        assert isinstance(await api_error(ask(client)), openai.InternalServerError)
    assert (await ask(client)).choices[0].message.content
    assert [request.status for request in fake.requests] == [500, 500, 200]


async def test_a_malformed_body_breaks_the_client(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.malformed())
    with pytest.raises(ValueError):
        await ask(client)


async def test_a_delay_longer_than_the_client_timeout_times_out_and_stop_is_prompt(
    fake: FakeOpenAI,
) -> None:
    fake.script(Reply.text("late").after(60))
    async with openai.AsyncOpenAI(
        base_url=fake.url, api_key=DEFAULT_API_KEY, timeout=0.3, max_retries=0
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await ask(client)
    started = time.monotonic()
    await fake.stop()
    assert time.monotonic() - started < 10  # the held answer did not keep the server up


async def test_a_short_delay_still_answers(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script(Reply.text("slow").after(0.05))
    assert (await ask(client)).choices[0].message.content == "slow"


def test_an_error_reply_needs_an_error_status() -> None:
    with pytest.raises(ValueError, match="4xx or 5xx"):
        Reply.error(200)


def test_fail_next_needs_a_positive_count() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        FakeOpenAI().fail_next(0, 500)


# ----- recording ---------------------------------------------------------------------------


async def test_every_request_is_recorded_with_the_key_redacted(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    await ask(client, "what left the bot", response_format=SCHEMA_FORMAT, max_tokens=50)
    [request] = await fake.wait_for_requests(1)
    assert request.model == "test-model"
    assert request.messages == [{"role": "user", "content": "what left the bot"}]
    assert request.response_format == SCHEMA_FORMAT
    assert request.body["max_tokens"] == 50
    assert request.headers["Authorization"] == "<redacted>"
    assert DEFAULT_API_KEY not in json.dumps(request.headers)
    assert "what left the bot" in request.text()


async def test_timed_out_requests_are_recorded_too(fake: FakeOpenAI) -> None:
    fake.script(Reply.text("late").after(60))
    async with openai.AsyncOpenAI(
        base_url=fake.url, api_key=DEFAULT_API_KEY, timeout=0.3, max_retries=0
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await ask(client, "slow one")
    assert fake.requests[0].messages[0]["content"] == "slow one"


async def test_wait_for_requests_names_what_it_saw(fake: FakeOpenAI) -> None:
    with pytest.raises(TimeoutError, match="got 0"):
        await fake.wait_for_requests(1, timeout=0.05)


async def test_reset_forgets_requests_and_script(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script(Reply.text("a"), Reply.text("b"))
    await ask(client)
    fake.reset()
    assert fake.requests == []
    assert fake.pending == 0


async def test_on_request_sees_each_request_and_formats_a_line() -> None:
    seen: list[str] = []
    async with (
        FakeOpenAI(on_request=lambda r: seen.append(format_request(r))) as fake,
        openai.AsyncOpenAI(base_url=fake.url, api_key=DEFAULT_API_KEY) as client,
    ):
        await ask(client, "printed")
    assert seen == [f"[fake openai] 200 /v1/chat/completions model=test-model {'printed'!r}"]


# ----- the rule of thumb ----------------------------------------------------------------


def request_of(body: dict[str, Any]) -> ChatRequest:
    return ChatRequest("/v1/chat/completions", body, {}, 0.0, 200)


def test_rule_of_thumb_picks_the_enum_value_named_in_the_data() -> None:
    body = {
        "messages": [{"role": "user", "content": "I have a BILLING question"}],
        "response_format": SCHEMA_FORMAT,
    }
    assert json.loads(rule_of_thumb(request_of(body)).content or "") == {"label": "billing"}


def test_rule_of_thumb_picks_the_first_enum_value_otherwise() -> None:
    body = {"messages": [{"role": "user", "content": "hm"}], "response_format": SCHEMA_FORMAT}
    assert json.loads(rule_of_thumb(request_of(body)).content or "") == {"label": "sales"}


def test_rule_of_thumb_calls_the_first_tool() -> None:
    reply = rule_of_thumb(
        request_of({"messages": [{"role": "user", "content": "x"}], "tools": TOOLS})
    )
    assert reply.tool_calls == (ToolCall("ask_question", {"question": "(fake answer)"}),)


def test_rule_of_thumb_answers_text_with_the_first_words() -> None:
    words = " ".join(f"w{i}" for i in range(30))
    reply = rule_of_thumb(request_of({"messages": [{"role": "user", "content": words}]}))
    assert reply.content == " ".join(f"w{i}" for i in range(12))


async def test_the_default_responder_answers_over_http(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    completion = await ask(client, "a support problem", response_format=SCHEMA_FORMAT)
    assert json.loads(completion.choices[0].message.content) == {"label": "support"}


async def test_many_concurrent_requests_are_all_answered(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    answers = await asyncio.gather(*(ask(client, f"n{i}") for i in range(20)))
    assert sorted(answer.choices[0].message.content for answer in answers) == sorted(
        f"n{i}" for i in range(20)
    )
