"""Proposals waiting for a click: what was understood, stored as a spec until Create.

A draft holds the spec the summary was made from, so Create saves exactly what the person
saw; only the person who asked may confirm, edit or cancel it. The buttons carry only the
draft's id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from sqlmodel import col, select

from bot.audit import Actor
from bot.clock import Clock
from bot.conversation.questions import Pending, pending_from_dict
from bot.db import Database
from bot.errors import UsageError
from bot.models import Draft
from bot.slack import interactive as ui
from bot.slack.blocks import Block, section
from bot.triggers.spec import TriggerSpec, spec_from_dict
from bot.webhooks.spec import HookSpec, hook_spec_from_dict

DRAFT_CREATE: Final = "draft_create"
DRAFT_EDIT: Final = "draft_edit"
DRAFT_CANCEL: Final = "draft_cancel"

Spec = TriggerSpec | HookSpec
_QUESTION: Final = "question"  # a draft's kind while it waits for an answer
_CHANGE: Final = "change"  # a change to an existing thing, waiting for Apply


@dataclass(frozen=True)
class OpenDraft:
    """A draft still waiting for its asker's click, with its spec read back."""

    id: int
    asker: Actor  # who asked, and where
    spec: Spec
    template: str | None = None  # a report's starter template, set once it is created


@dataclass(frozen=True)
class OpenChange:
    """A change waiting for its asker's Apply: what to do, to which thing."""

    id: int
    asker: Actor
    change: dict[str, object]


@dataclass(frozen=True)
class OpenQuestion:
    """A question still waiting for its asker's answer."""

    id: int
    asker: Actor
    pending: Pending


def proposal_message(summary: str, draft_id: int) -> list[Block]:
    """What the bot understood (``summary`` is mrkdwn, user text already escaped) with
    Create / Edit / Cancel buttons whose value is the draft id."""
    value = str(draft_id)
    return [
        section(f"Here's what I understood:\n{summary}"),
        ui.actions(
            [
                ui.button("Create", DRAFT_CREATE, value, style="primary"),
                ui.button("Edit", DRAFT_EDIT, value),
                ui.button("Cancel", DRAFT_CANCEL, value),
            ]
        ),
    ]


@dataclass
class Drafts:
    """Where proposals wait."""

    db: Database
    clock: Clock

    async def save(self, asker: Actor, spec: Spec, template: str | None = None) -> int:
        """Keep ``spec`` as ``asker``'s open proposal; returns the draft id."""
        document = spec.to_dict() | ({"template": template} if template is not None else {})
        kind = "trigger" if isinstance(spec, TriggerSpec) else "hook"
        return await self._add(asker, kind, document)

    async def save_question(self, asker: Actor, pending: Pending) -> int:
        """Keep a request waiting for the answer to its question; returns the draft id."""
        return await self._add(asker, _QUESTION, pending.to_dict())

    async def question_for(self, draft_id: int | None, user_id: str) -> OpenQuestion:
        """The open question ``draft_id`` if ``user_id`` was asked it; `UsageError` otherwise."""
        async with self.db.sessions() as session:
            draft = await session.get(Draft, draft_id) if draft_id is not None else None
        found = _question_of(draft)
        if draft is None or found is None:
            raise UsageError("That question is no longer open.")
        if draft.user_id != user_id:
            raise UsageError(f"Only <@{draft.user_id}>, who asked, can answer this question.")
        return found

    async def waiting_question(self, asker: Actor, since: datetime) -> OpenQuestion | None:
        """``asker``'s latest open question in their channel asked after ``since``."""
        query = (
            select(Draft)
            .where(col(Draft.team_id) == asker.team_id, col(Draft.user_id) == asker.user_id)
            .where(col(Draft.channel_id) == asker.channel_id, col(Draft.kind) == _QUESTION)
            .where(col(Draft.status) == "open", col(Draft.created_at) >= since)
            .order_by(col(Draft.id).desc())
            .limit(1)
        )
        async with self.db.sessions() as session:
            draft = (await session.execute(query)).scalars().first()
        return _question_of(draft)

    async def save_change(self, asker: Actor, change: dict[str, object]) -> int:
        """Keep a change to an existing thing waiting for Apply; returns the draft id."""
        return await self._add(asker, _CHANGE, change)

    async def change_for(self, draft_id: int | None, user_id: str) -> OpenChange:
        """The open change ``draft_id`` if ``user_id`` asked for it; `UsageError` otherwise."""
        async with self.db.sessions() as session:
            draft = await session.get(Draft, draft_id) if draft_id is not None else None
        if draft is None or draft.id is None or draft.kind != _CHANGE or draft.status != "open":
            raise UsageError("That change is no longer waiting.")
        if draft.user_id != user_id:
            raise UsageError(f"Only <@{draft.user_id}>, who asked, can apply or cancel this.")
        actor = Actor(draft.team_id, draft.user_id, draft.channel_id)
        return OpenChange(draft.id, actor, dict(draft.spec or {}))

    async def last_discussed(self, asker: Actor) -> dict[str, object] | None:
        """What ``asker`` last talked about here: the latest change's document (its
        ``thing`` and ``id``) or created proposal's spec (its ``name``), else None."""
        query = (
            select(Draft)
            .where(col(Draft.team_id) == asker.team_id, col(Draft.user_id) == asker.user_id)
            .where(col(Draft.channel_id) == asker.channel_id)
            .where(
                (col(Draft.kind) == _CHANGE)
                | ((col(Draft.kind).in_(("trigger", "hook"))) & (col(Draft.status) == "created"))
            )
            .order_by(col(Draft.id).desc())
            .limit(1)
        )
        async with self.db.sessions() as session:
            draft = (await session.execute(query)).scalars().first()
        if draft is None or draft.spec is None:
            return None
        if draft.kind == _CHANGE:
            return dict(draft.spec)
        return {"thing": draft.kind, "name": draft.spec.get("name")}

    async def _add(self, asker: Actor, kind: str, document: dict[str, object]) -> int:
        draft = Draft(
            team_id=asker.team_id,
            user_id=asker.user_id,
            channel_id=asker.channel_id,
            kind=kind,
            spec=document,
            created_at=self.clock.now(),
        )
        async with self.db.transaction() as session:
            session.add(draft)
            await session.flush()
            assert draft.id is not None
            return draft.id

    async def open_for(self, draft_id: int | None, user_id: str) -> OpenDraft:
        """The open draft ``draft_id`` if ``user_id`` asked for it; `UsageError` otherwise."""
        async with self.db.sessions() as session:
            draft = await session.get(Draft, draft_id) if draft_id is not None else None
        spec = _spec_of(draft) if draft is not None and draft.status == "open" else None
        if draft is None or draft.id is None or spec is None:
            raise UsageError("That proposal is no longer open.")
        if draft.user_id != user_id:
            raise UsageError(
                f"Only <@{draft.user_id}>, who asked, can confirm or change this proposal."
            )
        template = (draft.spec or {}).get("template")
        return OpenDraft(
            draft.id,
            Actor(draft.team_id, draft.user_id, draft.channel_id),
            spec,
            template if isinstance(template, str) else None,
        )

    async def is_open(self, draft_id: int) -> bool:
        """Whether draft ``draft_id`` still waits for a click."""
        async with self.db.sessions() as session:
            draft = await session.get(Draft, draft_id)
        return draft is not None and draft.status == "open"

    async def close(self, draft_id: int, status: str) -> None:
        """Mark a draft ``created``, ``cancelled``, ``answered``, ``replaced`` or ``applied``."""
        async with self.db.transaction() as session:
            row = await session.get(Draft, draft_id)
            if row is not None:
                row.status = status


def _question_of(draft: Draft | None) -> OpenQuestion | None:
    if draft is None or draft.id is None or draft.kind != _QUESTION or draft.status != "open":
        return None
    pending = pending_from_dict(draft.spec or {})
    if pending is None:
        return None
    return OpenQuestion(draft.id, Actor(draft.team_id, draft.user_id, draft.channel_id), pending)


def _spec_of(draft: Draft) -> Spec | None:
    if draft.spec is None or draft.kind == _QUESTION:
        return None
    try:
        if draft.kind == "hook":
            return hook_spec_from_dict(draft.spec)
        return spec_from_dict(draft.spec)
    except (KeyError, TypeError, ValueError):
        return None
