"""Block Kit as a person would see it, in a terminal: what local mode prints.

Slack shows a message as its blocks (sections, fields, context lines, buttons), in a
channel or a thread, sometimes only to one person; a modal as its title and fields. This
renders those compactly as plain text, one surface at a time:

    ── #ops · new message 1700000000.000100 ──
    :fire: *[FIRING:1] Fire*
      Status: firing · Alerts: 1 firing
      From hook *alerts* · `/hook log alerts`
      [Run now] [Snooze 1h] [Pause]

Slack's references become what Slack displays (``<#C0002>`` → ``#ops``, ``<@U0001>`` →
``@ada``, ``<https://x|label>`` → ``label <https://x>``, a date token → its fallback), and
its HTML escapes are undone. Everything here is pure: the caller passes the names of the
workspace's channels and users.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

INDENT: Final = "  "
_REFERENCE: Final = re.compile(r"<([^<>]+)>")
_ENTITIES: Final = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))
_SPECIAL: Final = {"channel": "@channel", "here": "@here", "everyone": "@everyone"}


@dataclass(frozen=True)
class Names:
    """What ids are called in the workspace: channel ids → names, user ids → names."""

    channels: Mapping[str, str] = field(default_factory=dict)
    users: Mapping[str, str] = field(default_factory=dict)

    def channel(self, channel_id: str) -> str:
        """``#ops`` for a known channel id, a DM's partner for a DM, else the id itself."""
        if channel_id.startswith("#"):
            return channel_id
        name = self.channels.get(channel_id)
        if name is None:
            return channel_id
        return f"DM with {self.user(name)}" if channel_id.startswith("D") else f"#{name}"

    def user(self, user_id: str) -> str:
        """``@ada`` for a known user id, else ``@`` and the id."""
        return f"@{self.users.get(user_id, user_id)}"


# ----- one Web API call ------------------------------------------------------------------


def render_call(method: str, args: Mapping[str, Any], names: Names) -> str | None:
    """The terminal text of one call the bot made, or None for calls people never see."""
    renderer = _CALLS.get(method)
    return None if renderer is None else renderer(args, names)


def _post(args: Mapping[str, Any], names: Names) -> str:
    where = names.channel(str(args.get("channel", "?")))
    thread, ts = args.get("thread_ts"), args.get("ts")
    placement = f"reply in thread {thread}" if thread else "new message"
    placement += f" {ts}" if ts else ""
    return _framed(f"{where} · {placement}", render_message(args, names))


def _ephemeral(args: Mapping[str, Any], names: Names) -> str:
    where = names.channel(str(args.get("channel", "?")))
    only = names.user(str(args.get("user", "?")))
    return _framed(f"{where} · only visible to {only}", render_message(args, names))


def _update(args: Mapping[str, Any], names: Names) -> str:
    where = names.channel(str(args.get("channel", "?")))
    return _framed(f"{where} · message {args.get('ts', '?')} edited", render_message(args, names))


def _response(args: Mapping[str, Any], names: Names) -> str:
    return _framed("reply to the command, only visible to you", render_message(args, names))


def _reaction(args: Mapping[str, Any], names: Names) -> str:
    where = names.channel(str(args.get("channel", "?")))
    return _framed(f"{where} · :{args.get('name', '?')}: added to {args.get('timestamp', '?')}")


def _join(args: Mapping[str, Any], names: Names) -> str:
    return _framed(f"joined {names.channel(str(args.get('channel', '?')))}")


def _view(verb: str) -> Callable[[Mapping[str, Any], Names], str]:
    def render(args: Mapping[str, Any], names: Names) -> str:
        view = args.get("view")
        view = view if isinstance(view, Mapping) else {}
        if view.get("type") == "home":
            title = f"App Home of {names.user(str(args.get('user_id', '?')))} {verb}"
        else:
            title = f'form "{_plain(view.get("title"))}" {verb}'
        return _framed(title, render_view(view, names))

    return render


_CALLS: Final[Mapping[str, Callable[[Mapping[str, Any], Names], str]]] = {
    "chat.postMessage": _post,
    "chat.postEphemeral": _ephemeral,
    "chat.update": _update,
    "response_url": _response,
    "reactions.add": _reaction,
    "conversations.join": _join,
    "views.open": _view("opened"),
    "views.update": _view("updated"),
    "views.push": _view("opened"),
    "views.publish": _view("published"),
}


def _framed(title: str, body: str = "") -> str:
    return f"── {title} ──" + (f"\n{body}" if body else "")


# ----- messages and views ----------------------------------------------------------------


def render_message(message: Mapping[str, Any], names: Names) -> str:
    """A message's blocks as lines (its text when it has no blocks)."""
    blocks = message.get("blocks")
    if isinstance(blocks, list) and blocks:
        return render_blocks(blocks, names)
    return mrkdwn(str(message.get("text") or ""), names)


def render_view(view: Mapping[str, Any], names: Names) -> str:
    """A modal or App Home: its blocks, and a modal's buttons."""
    lines = [render_blocks(list(view.get("blocks") or []), names)]
    buttons = [
        f"[{_plain(view.get(key))}]"
        for key in ("submit", "close")
        if isinstance(view.get(key), Mapping)
    ]
    if buttons:
        lines.append(" ".join(buttons))
    return "\n".join(line for line in lines if line)


def render_blocks(blocks: list[Any], names: Names) -> str:
    """Block Kit blocks as lines of text."""
    rendered = [_block(block, names) for block in blocks if isinstance(block, Mapping)]
    return "\n".join(text for text in rendered if text)


def _block(block: Mapping[str, Any], names: Names) -> str:
    renderer = _BLOCKS.get(str(block.get("type")))
    return renderer(block, names) if renderer is not None else f"[{block.get('type')} block]"


def _section(block: Mapping[str, Any], names: Names) -> str:
    lines = [_text(block.get("text"), names)]
    fields = [
        _field(item, names) for item in block.get("fields") or [] if isinstance(item, Mapping)
    ]
    if fields:
        lines.append(INDENT + " · ".join(fields))
    accessory = block.get("accessory")
    if isinstance(accessory, Mapping):
        lines.append(INDENT + _element(accessory, names))
    return "\n".join(line for line in lines if line)


def _field(item: Mapping[str, Any], names: Names) -> str:
    """A two-line field ("*Status*\\nfiring") on one line: "Status: firing"."""
    title, _, value = _text(item, names).partition("\n")
    title = title.strip("*")
    return f"{title}: {value.replace(chr(10), ' ')}" if value else title


def _context(block: Mapping[str, Any], names: Names) -> str:
    parts = [
        _element(item, names) for item in block.get("elements") or [] if isinstance(item, Mapping)
    ]
    return INDENT + " · ".join(part for part in parts if part)


def _actions(block: Mapping[str, Any], names: Names) -> str:
    parts = [
        _element(item, names) for item in block.get("elements") or [] if isinstance(item, Mapping)
    ]
    return INDENT + " ".join(parts)


def _header(block: Mapping[str, Any], names: Names) -> str:
    return f"▌{_plain(block.get('text'))}"


def _divider(_block: Mapping[str, Any], _names: Names) -> str:
    return "─" * 40


def _image(block: Mapping[str, Any], _names: Names) -> str:
    return f"[image: {block.get('alt_text', '')}]"


def _input(block: Mapping[str, Any], names: Names) -> str:
    """A modal's field: its label, what it holds, and its hint."""
    element = block.get("element")
    element = element if isinstance(element, Mapping) else {}
    optional = " (optional)" if block.get("optional") else ""
    line = f"{_plain(block.get('label'))}{optional}: {_input_value(element, names)}"
    hint = _plain(block.get("hint"))
    field_id = f"{INDENT}  field `{block.get('block_id', '?')}`"
    return "\n".join([line, field_id] + ([f"{INDENT}  {hint}"] if hint else []))


def _input_value(element: Mapping[str, Any], names: Names) -> str:
    kind = element.get("type")
    if kind == "plain_text_input":
        value = element.get("initial_value")
        return f"“{value}”" if value else f"[{_plain(element.get('placeholder')) or 'text'}]"
    if kind == "static_select":
        options = [option for option in element.get("options") or [] if isinstance(option, Mapping)]
        chosen = element.get("initial_option")
        chosen_value = chosen.get("value") if isinstance(chosen, Mapping) else None
        shown = [
            f"*{option.get('value')}*"
            if option.get("value") == chosen_value
            else str(option.get("value"))
            for option in options
        ]
        return "one of " + " | ".join(shown)
    if kind in ("conversations_select", "channels_select"):
        initial = element.get("initial_conversation") or element.get("initial_channel")
        return names.channel(str(initial)) if initial else "[a channel; default: this one]"
    return f"[{kind}]"


def _element(element: Mapping[str, Any], names: Names) -> str:
    kind = element.get("type")
    if kind == "button":
        confirm = " (asks first)" if element.get("confirm") else ""
        return f"[{_plain(element.get('text'))}]{confirm}"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind in ("mrkdwn", "plain_text"):
        return _text(element, names)
    return f"[{kind}]"


_BLOCKS: Final[Mapping[str, Callable[[Mapping[str, Any], Names], str]]] = {
    "section": _section,
    "context": _context,
    "actions": _actions,
    "header": _header,
    "divider": _divider,
    "image": _image,
    "input": _input,
}


# ----- text --------------------------------------------------------------------------------


def _text(obj: Any, names: Names) -> str:
    if not isinstance(obj, Mapping):
        return ""
    text = str(obj.get("text") or "")
    return mrkdwn(text, names) if obj.get("type") == "mrkdwn" else text


def _plain(obj: Any) -> str:
    return str(obj.get("text") or "") if isinstance(obj, Mapping) else ""


def mrkdwn(text: str, names: Names) -> str:
    """Slack's message text as it reads: references replaced, escapes undone."""
    shown = _REFERENCE.sub(lambda found: _reference(found[1], names), text)
    for entity, char in _ENTITIES:
        shown = shown.replace(entity, char)
    return shown


def _reference(inner: str, names: Names) -> str:
    target, _, label = inner.partition("|")
    if target.startswith("#"):
        channel_id = target[1:]
        if channel_id in names.channels:
            return names.channel(channel_id)
        return f"#{label or channel_id}"
    if target.startswith("@"):
        return names.user(target[1:])
    if target.startswith("!date^"):
        return label or target
    if target.startswith("!"):
        return _SPECIAL.get(target[1:], label or target)
    return f"{label} <{target}>" if label and label != target else target
