"""What an email trigger posts in Slack.

* one message per new mail: subject, sender name and address, date in the trigger's time
  zone, the start of the plain-text body (quotes and signature trimmed), attachment names
  and sizes, and what chose the channel (a routing rule, the AI's category, or no rule);
* one summary per channel that would get more than `MAX_POSTS_PER_CHANNEL` in one run
  ("12 new messages: …"), never a flood;
* a notice when the mailbox was renumbered (UIDVALIDITY changed) and one when more mail
  arrived than a run reads.

Everything taken from a mail is escaped: a subject of ``<!channel>`` pings nobody.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final
from zoneinfo import ZoneInfo

from bot.mail.message import Attachment, MailMessage
from bot.mail.watch import MAX_FETCH, MAX_POSTS_PER_CHANNEL, Post, group_for_channels
from bot.models import Trigger
from bot.outbox import Message
from bot.slack import blocks as kit
from bot.slack.blocks import escape_mrkdwn, plural, truncate
from bot.triggers.messages import source_of
from bot.triggers.schedule import local_time

SUBJECT_SHOWN: Final = 200
SUMMARY_SUBJECT_SHOWN: Final = 90
ATTACHMENTS_SHOWN: Final = 20
PROBLEMS_SHOWN: Final = 3


@dataclass(frozen=True)
class Routed:
    """A new mail and where it goes: ``route`` says in words what chose ``channel``
    ("rule 2: subject matches …", "no rule matched"); ``category`` is the AI's label."""

    uid: int
    message: MailMessage
    channel: str
    route: str
    category: str | None = None


def posts_for(
    trigger: Trigger,
    routed: Sequence[Routed],
    *,
    tz: ZoneInfo,
    skipped: int = 0,
    notice: str | None = None,
) -> list[Message]:
    """Everything one run posts, in order: the notice, the mail (one post each, or one
    summary per channel over the limit), then a note of what was passed over."""
    messages = [notice_message(trigger, notice)] if notice else []
    for group in group_for_channels([(item.channel, item) for item in routed]):
        if isinstance(group, Post):
            messages.append(mail_message(trigger, group.message, tz))
        else:
            messages.append(summary_message(trigger, group.channel, group.messages, tz))
    if skipped:
        messages.append(skipped_message(trigger, skipped))
    return messages


def mail_message(trigger: Trigger, routed: Routed, tz: ZoneInfo) -> Message:
    """One mail as one post."""
    mail = routed.message
    subject = _subject(mail)
    heading = f":envelope_with_arrow: *{escape_mrkdwn(truncate(subject, SUBJECT_SHOWN))}*"
    sender_line = f"From {escape_mrkdwn(sender_of(mail))} · {date_of(mail, tz)}"
    blocks = [kit.section(f"{heading}\n{sender_line}")]
    if mail.text:
        blocks.append(kit.section(_quoted(mail.text, mail.html_only)))
    if mail.attachments:
        blocks.append(kit.context([attachments_line(mail.attachments)]))
    if mail.problems:
        blocks.append(kit.context([_problems_line(mail.problems)]))
    blocks.append(kit.context([footer(trigger, routed)]))
    fallback = escape_mrkdwn(f"Email from {sender_of(mail)}: {truncate(subject, SUBJECT_SHOWN)}")
    text, fitted = kit.fit_message(fallback, blocks)
    return Message(routed.channel, text, blocks=fitted, source=source_of(trigger))


def summary_message(
    trigger: Trigger, channel: str, routed: Sequence[Routed], tz: ZoneInfo
) -> Message:
    """Many mails for one channel in one run, as one post: a line each, oldest first."""
    count = plural(len(routed), "new message")
    heading = f":incoming_envelope: *{count}* for *{escape_mrkdwn(trigger.name)}*:"
    lines = [_summary_line(item, tz) for item in routed]
    blocks = [kit.section(heading), *(kit.section(text) for text in _sections(lines))]
    blocks.append(kit.context([_summary_routes(routed)]))
    text, fitted = kit.fit_message(f"{count}: {_subjects(routed)}", blocks)
    return Message(channel, text, blocks=fitted, source=source_of(trigger))


def notice_message(trigger: Trigger, notice: str) -> Message:
    """A one-line notice about the mailbox itself, in the trigger's channel."""
    text = f":arrows_counterclockwise: *{escape_mrkdwn(trigger.name)}*: {escape_mrkdwn(notice)}"
    return Message(trigger.channel_id, text, source=source_of(trigger))


def skipped_message(trigger: Trigger, skipped: int) -> Message:
    """More mail arrived between two runs than one run reads: the oldest were passed over."""
    text = (
        f":warning: *{escape_mrkdwn(trigger.name)}*: {plural(skipped, 'older new message')} "
        f"{'was' if skipped == 1 else 'were'} not posted: more than {MAX_FETCH} arrived "
        "between two runs, and only the newest are read."
    )
    return Message(trigger.channel_id, text, source=source_of(trigger))


def sender_of(mail: MailMessage) -> str:
    """``Ada Lovelace <ada@example.org>``, or what there is of it."""
    if mail.from_name and mail.from_address and mail.from_name != mail.from_address:
        return f"{mail.from_name} <{mail.from_address}>"
    return mail.from_address or mail.from_name or "(unknown sender)"


def date_of(mail: MailMessage, tz: ZoneInfo) -> str:
    """The mail's Date header in the trigger's time zone, zone named."""
    return local_time(mail.date, tz) if mail.date else "(no date)"


def attachments_line(attachments: Sequence[Attachment]) -> str:
    """``:paperclip: invoice.pdf (48 KB) · logo.png (3 KB)``."""
    shown = [
        f"{escape_mrkdwn(truncate(item.name, 100))} ({size_text(item.size)})"
        for item in attachments[:ATTACHMENTS_SHOWN]
    ]
    more = len(attachments) - len(shown)
    return ":paperclip: " + " · ".join(shown) + (f" · and {more} more" if more else "")


def size_text(size: int) -> str:
    """Bytes as people read them: ``512 bytes``, ``48 KB``, ``1.2 MB``."""
    if size < 1000:
        return plural(size, "byte")
    if size < 1_000_000:
        return f"{size / 1000:.0f} KB"
    return f"{size / 1_000_000:.1f} MB"


def footer(trigger: Trigger, routed: Routed) -> str:
    """What chose the channel, and which watch posted it."""
    said = [f"*{escape_mrkdwn(trigger.name)}*"]
    if routed.category:
        said.append(f"categorised as {escape_mrkdwn(routed.category)}")
    said.append(escape_mrkdwn(routed.route))
    return " · ".join(said)


def _subject(mail: MailMessage) -> str:
    return mail.subject or "(no subject)"


def _quoted(text: str, html_only: bool) -> str:
    quoted = "\n".join(f">{' ' if line else ''}{escape_mrkdwn(line)}" for line in text.split("\n"))
    return f"{quoted}\n_(converted from HTML)_" if html_only else quoted


def _problems_line(problems: Sequence[str]) -> str:
    shown = "; ".join(escape_mrkdwn(problem) for problem in problems[:PROBLEMS_SHOWN])
    more = len(problems) - PROBLEMS_SHOWN
    return f":warning: shown as far as it could be read: {shown}" + (
        f" (and {more} more)" if more > 0 else ""
    )


def _summary_line(routed: Routed, tz: ZoneInfo) -> str:
    mail = routed.message
    subject = escape_mrkdwn(truncate(_subject(mail), SUMMARY_SUBJECT_SHOWN))
    clip = " :paperclip:" if mail.attachments else ""
    return f"• *{subject}* — {escape_mrkdwn(sender_of(mail))} · {date_of(mail, tz)}{clip}"


def _sections(lines: Sequence[str]) -> list[str]:
    """Lines packed into section texts that each fit Slack's limit."""
    sections: list[str] = []
    current: list[str] = []
    for line in lines:
        line = truncate(line, kit.SECTION_TEXT_MAX)
        if current and len("\n".join([*current, line])) > kit.SECTION_TEXT_MAX:
            sections.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        sections.append("\n".join(current))
    return sections


def _summary_routes(routed: Sequence[Routed]) -> str:
    routes = list(dict.fromkeys(item.route for item in routed))
    shown = "; ".join(escape_mrkdwn(route) for route in routes[:3])
    more = f"; and {len(routes) - 3} more" if len(routes) > 3 else ""
    return f"More than {MAX_POSTS_PER_CHANNEL} in one run, so one summary · {shown}{more}"


def _subjects(routed: Sequence[Routed]) -> str:
    return escape_mrkdwn("; ".join(truncate(_subject(item.message), 60) for item in routed))
