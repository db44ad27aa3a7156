"""The AI step on what a trigger posts: a label for each new item, a summary of long ones.

A trigger with ``/trigger set NAME categorise=…`` has each new item it posts (a feed entry
or, through `mail_categoriser`, an email before its routing rules run) labelled by the model,
shown as "categorised as *billing* (AI)"; with ``summary=on``, an item whose text is long
gets a summary on top. Both are asked for after the check and before the run is saved,
outside any transaction; when AI is off or fails, the item is posted as it would have
been. The labels a trigger uses are ``trigger.settings["categorise"]``
(`bot.triggers.settings`).

A new kind of item plugs in with `item_text` (what the model reads of it) and, to route
by the label, `categorise_item` before its routing rules run (``category`` in their scope).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from bot.ai.labels import Label, LabelError, parse_labels
from bot.ai.notes import with_notes
from bot.ai.steps import AISteps, ToCategorise, ToSummarise
from bot.mail.message import MailMessage
from bot.models import Trigger
from bot.outbox import Message
from bot.triggers.evaluate import Announcement
from bot.triggers.observation import FeedItem


@dataclass(frozen=True)
class ItemNotes:
    """What the AI said about one posted item (None: nothing, and rules decided)."""

    category: Label | None = None
    summary: str | None = None


NO_NOTES = ItemNotes()


def trigger_labels(trigger: Trigger) -> tuple[Label, ...]:
    """The labels ``/trigger set NAME categorise=…`` gave the trigger (none when unset)."""
    stored = (trigger.settings or {}).get("categorise")
    if not stored:
        return ()
    try:
        return parse_labels(stored)
    except LabelError:  # checked when set; unreadable only if the label rules changed
        return ()


def wants_summary(trigger: Trigger) -> bool:
    """True when ``/trigger set NAME summary=on`` asked for summaries of long items."""
    return (trigger.settings or {}).get("summary") == "on"


def item_text(item: FeedItem) -> str:
    """What the model reads of a feed item: its title, link and description."""
    return "\n".join(part for part in (item.title, item.link, item.summary) if part)


def mail_text(mail: MailMessage) -> str:
    """What the model reads of an email: who sent it, the subject and the body's preview."""
    sender = f"{mail.from_name} <{mail.from_address}>" if mail.from_name else mail.from_address
    return "\n".join(part for part in (f"From: {sender}", f"Subject: {mail.subject}", mail.text))


def mail_categoriser(
    ai: AISteps,
) -> Callable[[Trigger, Sequence[MailMessage]], Awaitable[Sequence[str | None]]]:
    """The email trigger's categorise step: each message's label name, or None where the
    AI gave none (off, budget spent, failed, or the trigger has no ``categorise=``)."""

    async def categorise(trigger: Trigger, messages: Sequence[MailMessage]) -> list[str | None]:
        labels = trigger_labels(trigger)
        if not labels or not ai.enabled:
            return [None] * len(messages)
        found = await ai.categorise_all(
            [ToCategorise(trigger.team_id, mail_text(mail), labels) for mail in messages]
        )
        return [label.name if label is not None else None for label in found]

    return categorise


async def categorise_item(
    ai: AISteps | None, team: str, text: str, labels: Sequence[Label]
) -> Label | None:
    """The AI's label for one item, or None (AI off, budget spent, failed): then the
    routing rules alone decide."""
    if ai is None or not labels:
        return None
    return await ai.categorise_item(team, text, labels)


async def notes_for(
    ai: AISteps | None, trigger: Trigger, announcements: Sequence[Announcement]
) -> list[ItemNotes]:
    """The AI's notes for each announcement (`NO_NOTES` for those without an item)."""
    labels = trigger_labels(trigger)
    summarise = wants_summary(trigger)
    items = [(index, a.item) for index, a in enumerate(announcements) if a.item is not None]
    if ai is None or not items or not (labels or summarise):
        return [NO_NOTES] * len(announcements)
    texts = [item_text(item) for _, item in items]
    categories = await ai.categorise_all(
        [ToCategorise(trigger.team_id, text, labels) for text in texts] if labels else []
    )
    summaries = await ai.summaries_of(
        [ToSummarise(trigger.team_id, item.summary or "") for _, item in items] if summarise else []
    )
    notes = [NO_NOTES] * len(announcements)
    for position, (index, _) in enumerate(items):
        category = categories[position] if categories else None
        summary = summaries[position] if summaries else None
        notes[index] = ItemNotes(category, summary)
    return notes


def noted(message: Message, notes: ItemNotes) -> Message:
    """``message`` with its item's label line and summary, if the AI gave any."""
    return with_notes(message, summary=notes.summary, category=notes.category)
