"""``/secret``: store credentials, bind them to hosts, and say who may use them.

Each subcommand parses its words into typed values once (`parse_set`, `parse_test`),
hands them to `SecretService`, and answers privately. ``/secret set NAME for HOST`` opens
a form for the value, so the value never travels in a slash command's text; typing the
value after the host also works (for scripts) and is answered with a reminder. Nothing
here ever shows a value: replies name secrets as ``••••(NAME)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

from bot.audit import Actor
from bot.credentials.hosts import HostPatternError, parse_host_pattern, same_origin
from bot.credentials.refs import (
    AUTH_EXAMPLE,
    CredentialRef,
    RefError,
    describe,
    parse_options,
    secret_names,
)
from bot.credentials.send import refused_secrets
from bot.credentials.service import SecretInfo, SecretService
from bot.credentials.spec import SecretTarget, parse_target_hosts, parse_target_name
from bot.errors import UsageError
from bot.net import Credentials, FetchBlocked, FetchError, FetchResult, SafeFetcher
from bot.outbox import Message, Outbox
from bot.slack.blocks import escape_mrkdwn, truncate
from bot.slack.slash import Command, Reply, Subcommand, run_subcommand
from bot.slack.text import CommandSyntaxError, parse_url, parse_user, scan
from bot.tasks import BackgroundTasks

HOST_HINT: Final = (
    "HOST is where it may be sent: `api.crm.example.com`, `*.example.com` (one level) or "
    "`imap.example.com:993`. Without a port only https (443), imaps (993) and smtps (465)."
)
HELP: Final = f"""*Secrets* — credentials the bot sends to other systems, only to the hosts you bind them to. A value is never shown again.
• `/secret set NAME for HOST[,HOST…]` opens a form for the value (add `basic` to give a user name too)
• `/secret list` · `/secret show NAME` · `/secret delete NAME`
• `/secret allow NAME @user …` · `/secret deny NAME @user …` — who may use it besides you and the admins
• `/secret test URL auth=bearer:NAME` sends one GET with it and shows the answer
{HOST_HINT}
Hooks, triggers and actions use a secret as `auth=bearer:NAME`, `auth=basic:NAME` or `header.X-Api-Key=secret:NAME`; templates cannot read secrets.
Example: `/secret set crm-token for api.crm.example.com`"""
SET_EXAMPLE: Final = "/secret set crm-token for api.crm.example.com"
TYPED_VALUE_REMINDER: Final = (
    "Next time, leave the value out: `/secret set NAME for HOST` opens a form, so the value "
    "never travels in a command's text."
)
BODY_SHOWN: Final = 500

OpenForm = Callable[[Command, SecretTarget], Awaitable[Reply]]


@dataclass(frozen=True)
class SetCommand:
    """``/secret set NAME for HOST[,HOST…] [basic] [user=NAME] [VALUE]``; ``value`` None
    means the form asks for it."""

    target: SecretTarget
    value: str | None


@dataclass(frozen=True)
class TestCommand:
    """``/secret test URL auth=bearer:NAME`` (or ``header.X=secret:NAME``)."""

    url: str
    refs: tuple[CredentialRef, ...]


@dataclass
class SecretSlash:
    """The ``/secret`` slash command."""

    service: SecretService
    open_form: OpenForm
    fetcher: SafeFetcher
    outbox: Outbox
    background: BackgroundTasks
    timeout: float
    max_bytes: int

    async def __call__(self, command: Command) -> Reply:
        try:
            scan(command.text)
        except CommandSyntaxError:
            # The usual answer quotes the text near the quote: here it may be a value.
            return Reply(
                "A quote in that command is never closed. To set a value with quotes or "
                f"spaces, leave it out and fill in the form: `{SET_EXAMPLE}`",
                ok=False,
            )
        subcommands: dict[str, Subcommand] = {
            "set": self.set,
            "list": self.list_all,
            "show": self.show,
            "delete": self.delete,
            "allow": self.allow,
            "deny": self.deny,
            "test": self.test,
        }
        return await run_subcommand(command, "/secret", subcommands, HELP)

    async def set(self, command: Command, words: list[str], _rest: str) -> Reply:
        parsed = parse_set(words)
        if parsed.value is None:
            return await self.open_form(command, parsed.target)
        info = await self.service.set(command.actor, parsed.target.with_value(parsed.value))
        return Reply(f"{set_text(info)}\n{TYPED_VALUE_REMINDER}")

    async def list_all(self, command: Command, _words: list[str], _rest: str) -> Reply:
        secrets = await self.service.all_of(command.team_id)
        if not secrets:
            return Reply(f"No secrets yet. Store one: `{SET_EXAMPLE}`")
        return Reply("*Secrets*\n" + "\n".join(f"• {secret_line(s)}" for s in secrets))

    async def show(self, command: Command, words: list[str], _rest: str) -> Reply:
        return Reply(show_text(await self.service.info(command.team_id, _name_of(words, "show"))))

    async def delete(self, command: Command, words: list[str], _rest: str) -> Reply:
        name = _name_of(words, "delete")
        await self.service.delete(command.actor, name)
        return Reply(f"Deleted the secret *{parse_target_name(name)}*.")

    async def allow(self, command: Command, words: list[str], _rest: str) -> Reply:
        name, users = _name_and_users(words, "allow")
        info = await self.service.allow(command.actor, name, users)
        return Reply(f"*{info.name}* may be used by {_users_text(info)}.")

    async def deny(self, command: Command, words: list[str], _rest: str) -> Reply:
        name, users = _name_and_users(words, "deny")
        info = await self.service.deny(command.actor, name, users)
        return Reply(f"*{info.name}* may be used by {_users_text(info)}.")

    async def test(self, command: Command, words: list[str], _rest: str) -> Reply:
        parsed = parse_test(words)
        credentials = await self.service.credentials_for(command.actor, parsed.refs)
        refused = refused_secrets(parsed.refs, parsed.url, credentials.lookup)
        if refused:
            host = urlsplit(parsed.url).netloc
            raise UsageError(
                f"Not sent: {', '.join(f'`{n}`' for n in refused)} may not go to {host} "
                f"(bound to {', '.join(_bindings(refused, credentials))}). To send it "
                f"there, set it again naming that host: `/secret set {refused[0]} for HOST`."
            )
        self.background.spawn(self._test_and_tell(command.actor, parsed, credentials))
        sent = ", ".join(describe(parsed.refs))
        return Reply(f"Sending `GET {parsed.url}` with {sent}; the answer comes here shortly.")

    async def _test_and_tell(
        self, actor: Actor, parsed: TestCommand, credentials: Credentials
    ) -> None:
        try:
            result = await self.fetcher.get(
                parsed.url, timeout=self.timeout, max_bytes=self.max_bytes, credentials=credentials
            )
            text = tested_text(parsed, result)
        except (FetchBlocked, FetchError) as error:
            text = f"`GET {parsed.url}` failed: {error.reason}"
        await self.outbox.send(
            Message(actor.channel_id, text, kind="ephemeral", user=actor.user_id, source="secret")
        )


# Reading what was typed


def parse_set(words: list[str]) -> SetCommand:
    """``NAME for HOST[,HOST…] [basic] [user=NAME] [VALUE]`` → a `SetCommand`.

    Hosts may be written with spaces after the commas. The value, if typed, is the one
    word left (quoted if it has spaces); a `UsageError` never repeats it.
    """
    if len(words) < 3 or words[1].lower() != "for":
        raise UsageError(f"Say which host the secret may go to. Example: `{SET_EXAMPLE}`")
    name = parse_target_name(words[0])
    host_words, rest = _host_words(words[2:])
    typed = "".join(host_words).split(",")
    hosts = parse_target_hosts(",".join(_host_text(part.strip()) for part in typed))
    basic, user, leftover = _set_options(rest)
    if len(leftover) > 1:
        raise UsageError(
            "After the hosts give only `basic`, `user=NAME` and the value (one word; quote "
            f"it if it has spaces). Better: leave the value out and fill in the form: `{SET_EXAMPLE}`"
        )
    value = leftover[0] if leftover else None
    if value is not None and value.startswith("<") and value.endswith(">"):
        raise UsageError(
            "Slack changed that value (it looked like a link, a channel or a person): leave "
            "it out and fill in the form instead."
        )
    if value is not None and _looks_like_a_host(value):
        raise UsageError(
            "Separate the hosts with commas (`a.example.com,b.example.com`). If that was the "
            "value, leave it out and fill in the form instead."
        )
    return SetCommand(SecretTarget(name, hosts, basic or user is not None, user), value)


def _looks_like_a_host(word: str) -> bool:
    """A dotted host name or address: more likely a host typed without its comma than a
    value (tokens and passwords are not dotted names)."""
    if "." not in word:
        return False
    try:
        parse_host_pattern(word)
    except HostPatternError:
        return False
    return True


def parse_test(words: list[str]) -> TestCommand:
    """``URL auth=bearer:NAME`` (or ``header.X=secret:NAME``, several allowed)."""
    url = parse_url(words[0]) if words else None
    if url is None:
        raise UsageError(
            f"Which URL? Example: `/secret test https://api.crm.example.com/me {AUTH_EXAMPLE}`"
        )
    pairs = [_option(word) for word in words[1:]]
    try:
        refs = parse_options(pairs)
    except RefError as error:
        raise UsageError(str(error)) from None
    if not secret_names(refs):
        raise UsageError(f"Name the secret to send. Example: `/secret test {url} {AUTH_EXAMPLE}`")
    return TestCommand(url, refs)


def _host_words(words: list[str]) -> tuple[list[str], list[str]]:
    """The words that make up ``HOST[,HOST…]`` (``a.example.com, b.example.com`` too)."""
    taken = [words[0]]
    position = 1
    while position < len(words) and (taken[-1].endswith(",") or words[position].startswith(",")):
        taken.append(words[position])
        position += 1
    return taken, words[position:]


def _host_text(word: str) -> str:
    """A host as typed, or as Slack linked it (``<http://api.example.com|api.example.com>``)."""
    if word.startswith("<") and word.endswith(">"):
        target, _, label = word[1:-1].partition("|")
        return label or urlsplit(target).netloc or target
    return word


def _set_options(words: list[str]) -> tuple[bool, str | None, list[str]]:
    basic, user, leftover = False, None, []
    for word in words:
        key, equals, value = word.partition("=")
        if word.lower() == "basic":
            basic = True
        elif equals and key.lower() == "user" and user is None:
            user = value
        else:
            leftover.append(word)
    return basic, user, leftover


def _option(word: str) -> tuple[str, str]:
    key, equals, value = word.partition("=")
    if not equals:
        raise UsageError(f"`{word}` is not an option like {AUTH_EXAMPLE}")
    return key, value


def _name_of(words: list[str], verb: str) -> str:
    if not words:
        raise UsageError(f"Which secret? Example: `/secret {verb} crm-token`")
    return words[0]


def _name_and_users(words: list[str], verb: str) -> tuple[str, list[str]]:
    name = _name_of(words, verb)
    users = [parse_user(word) for word in words[1:]]
    if not users or any(user is None for user in users):
        raise UsageError(f"Name the people with @. Example: `/secret {verb} {name} @alex @sam`")
    return name, [user for user in users if user is not None]


# What is said about secrets, wherever it is said from.


def set_text(info: SecretInfo) -> str:
    """The answer to storing a secret: where it may go, and how to use it; never the value."""
    user = f" with the user name `{info.user}`" if info.user else ""
    scheme = "basic" if info.user else "bearer"
    return (
        f"Stored the secret *{info.name}*{user}. It will only be sent to "
        f"{_hosts_text(info)}, and is never shown again.\n"
        f"Use it as `auth={scheme}:{info.name}` or `header.X-Api-Key=secret:{info.name}`."
    )


def secret_line(info: SecretInfo) -> str:
    """One secret in ``/secret list``."""
    used = f" · used by {', '.join(info.used_by)}" if info.used_by else ""
    others = f" · also for {' '.join(f'<@{u}>' for u in info.allowed)}" if info.allowed else ""
    return (
        f"*{info.name}* → {_hosts_text(info)} · set by <@{info.set_by}> "
        f"{info.set_at:%Y-%m-%d %H:%M} UTC{used}{others}"
    )


def show_text(info: SecretInfo) -> str:
    """``/secret show NAME``: everything about the secret but its value."""
    lines = [
        f"*{info.name}* (the value is never shown)",
        f"*Sent only to:* {_hosts_text(info)}",
        f"*Kind:* {'basic auth as `' + info.user + '`' if info.user else 'a token or password'}",
        f"*Set by:* <@{info.set_by}> at {info.set_at:%Y-%m-%d %H:%M} UTC",
        f"*May be used by:* {_users_text(info)}",
        f"*Used by:* {', '.join(info.used_by) or 'nothing yet'}",
        f"*Last change:* {info.last_change or '—'}",
    ]
    return "\n".join(lines)


def tested_text(parsed: TestCommand, result: FetchResult) -> str:
    """The answer to ``/secret test``: status, time, and the start of the body."""
    lines = [f"`GET {parsed.url}` → *{result.status}* in {result.elapsed_ms:.0f} ms"]
    if not same_origin(parsed.url, result.final_url):
        lines.append(
            f"It was redirected to another origin ({urlsplit(result.final_url).netloc}), "
            "where the secret was not sent."
        )
    body = result.body.decode("utf-8", "replace").replace("```", "'''")
    if body.strip():
        shown = escape_mrkdwn(truncate(body, BODY_SHOWN))
        lines.append(f"```{shown}```")
    return "\n".join(lines)


def _hosts_text(info: SecretInfo) -> str:
    return ", ".join(f"`{host}`" for host in info.hosts)


def _users_text(info: SecretInfo) -> str:
    others = "".join(f", <@{user}>" for user in info.allowed)
    return f"<@{info.created_by}> (who created it){others} and the admins"


def _bindings(names: tuple[str, ...], credentials: Credentials) -> list[str]:
    return [str(host) for name in names for host in credentials.lookup(name).hosts]
