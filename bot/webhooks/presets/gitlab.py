"""GitLab deliveries as Slack messages, one renderer per ``X-Gitlab-Event``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from bot.slack import blocks as bk
from bot.slack.blocks import plural
from bot.webhooks.event import InboundEvent, Rendered
from bot.webhooks.presets._common import (
    code,
    dict_at,
    dig,
    esc,
    first_line,
    first_text,
    int_at,
    list_at,
    short_sha,
    text_at,
)
from bot.webhooks.presets._pieces import (
    ZERO_SHA,
    Commit,
    Outcome,
    arrows,
    commit_list,
    duration,
    field,
    mapping_items,
    optional_field,
    present,
    ref_name,
    rendered,
)

Payload = Mapping[str, Any]


def render_gitlab(event: InboundEvent) -> Rendered | None:
    """Render a GitLab delivery; None when the event or payload is not one we know."""
    renderer = _BY_EVENT.get(event.event)
    if renderer is None or not isinstance(event.payload, Mapping):
        return None
    return renderer(event.payload)


def _project(p: Payload) -> str:
    return text_at(p, "project", "path_with_namespace")


def _project_link(p: Payload) -> str:
    return bk.link(text_at(p, "project", "web_url"), _project(p))


def _project_id(p: Payload) -> int | None:
    found = int_at(p, "project", "id")
    return found if found is not None else int_at(p, "project_id")


def _user(p: Payload) -> str:
    return first_text(p, [("user", "name"), ("user_name",), ("user", "username")]) or "Someone"


# --- push --------------------------------------------------------------------------


def _push(p: Payload) -> Rendered | None:
    kind, name = ref_name(text_at(p, "ref"))
    if not _project(p) or not name:
        return None
    if text_at(p, "after") == ZERO_SHA:
        line = f":wastebasket: *{esc(_user(p))}* deleted {kind} {code(name)} in {_project_link(p)}"
        return rendered(
            esc(f"[{_project(p)}] {_user(p)} deleted {kind} {name}"), [bk.section(line)]
        )
    commits = _commits(p)
    if kind == "tag" or not commits:
        return _push_ref_only(p, kind, name)
    return _push_commits(p, name, commits)


def _commits(p: Payload) -> list[Commit]:
    return [
        Commit(
            sha=text_at(c, "id"),
            url=text_at(c, "url"),
            message=first_text(c, [("title",), ("message",)]),
            author=text_at(c, "author", "name"),
        )
        for c in mapping_items(dig(p, "commits"))
    ]


def _push_ref_only(p: Payload, kind: str, name: str) -> Rendered:
    created = text_at(p, "before") == ZERO_SHA
    emoji, verb = {
        "tag": (":label:", "pushed tag"),
        "branch": (":seedling:", "created branch") if created else (":arrow_up:", "pushed to"),
    }.get(kind, (":arrow_up:", "pushed to"))
    line = f"{emoji} *{esc(_user(p))}* {verb} {_tree_link(p, name)} in {_project_link(p)}"
    return rendered(esc(f"[{_project(p)}] {_user(p)} {verb} {name}"), [bk.section(line)])


def _push_commits(p: Payload, branch: str, commits: list[Commit]) -> Rendered:
    total = max(int_at(p, "total_commits_count") or 0, len(commits))
    count = plural(total, "commit")
    where = f"{_tree_link(p, branch)} in {_project_link(p)}"
    line = f":arrow_up: *{esc(_user(p))}* pushed {count} to {where}"
    blocks = [bk.section(line), bk.section(commit_list(commits, total)), *_compare(p)]
    return rendered(esc(f"[{_project(p)}] {_user(p)} pushed {count} to {branch}"), blocks)


def _tree_link(p: Payload, name: str) -> str:
    web_url = text_at(p, "project", "web_url")
    label = f"`{name.replace('`', '')}`"
    return bk.link(f"{web_url}/-/tree/{quote(name)}", label) if web_url else code(name)


def _compare(p: Payload) -> list[bk.Block]:
    web_url = text_at(p, "project", "web_url")
    before, after = text_at(p, "before"), text_at(p, "after")
    if not web_url or not before or before == ZERO_SHA or not after:
        return []
    url = f"{web_url}/-/compare/{quote(before)}...{quote(after)}"
    return [bk.context([bk.link(url, "Compare changes")])]


# --- merge requests ------------------------------------------------------------------

_MR_OUTCOMES = {
    "open": Outcome(":large_green_circle:", "opened"),
    "reopen": Outcome(":large_green_circle:", "reopened", "arrows_counterclockwise", True),
    "merge": Outcome(":large_purple_circle:", "merged", "white_check_mark", True),
    "close": Outcome(":red_circle:", "closed", "no_entry_sign", True),
    "update": Outcome(":large_blue_circle:", "updated"),
    "approval": Outcome(":thumbsup:", "approved"),
    "approved": Outcome(":thumbsup:", "approved"),
    "unapproval": Outcome(":large_blue_circle:", "unapproved"),
    "unapproved": Outcome(":large_blue_circle:", "unapproved"),
}


def _merge_request(p: Payload) -> Rendered | None:
    mr = dict_at(p, "object_attributes")
    iid = int_at(mr, "iid")
    project_id = _project_id(p)
    if project_id is None:
        project_id = int_at(mr, "target_project_id")
    if not _project(p) or iid is None or project_id is None:
        return None
    action = text_at(mr, "action")
    outcome = _MR_OUTCOMES.get(action) or Outcome(":large_blue_circle:", action or "updated")
    title = text_at(mr, "title")
    headline = f"{outcome.emoji} *{bk.link(text_at(mr, 'url'), f'!{iid} {title}')}*"
    byline = f"{esc(_user(p))} {esc(outcome.verb)} merge request !{iid} in {_project_link(p)}"
    blocks = [bk.section(f"{headline}\n{byline}"), bk.fields(_mr_facts(p, mr))]
    text = f"[{_project(p)}] {_user(p)} {outcome.verb} merge request !{iid}: {title}"
    return rendered(esc(text, 500), blocks, f"gitlab:{project_id}:mr:{iid}", outcome)


def _mr_facts(p: Payload, mr: Payload) -> list[str]:
    labels = [text_at(label, "title") for label in list_at(p, "labels")]
    assignees = [text_at(user, "username") for user in list_at(p, "assignees")]
    branches = arrows(text_at(mr, "target_branch"), text_at(mr, "source_branch"))
    return present(
        [
            field("Branches", branches),
            optional_field("State", esc(text_at(mr, "state"))),
            optional_field("Labels", esc(", ".join(present(labels)))),
            optional_field("Assignees", esc(", ".join(present(assignees)))),
        ]
    )


# --- pipelines ------------------------------------------------------------------------

_PIPELINE_OUTCOMES = {
    "success": Outcome(":white_check_mark:", "passed", "white_check_mark", True),
    "failed": Outcome(":x:", "failed", "x", True),
    "canceled": Outcome(":no_entry_sign:", "was canceled", "no_entry_sign", True),
    "skipped": Outcome(":fast_forward:", "was skipped", None, True),
    "running": Outcome(":hourglass_flowing_sand:", "is running"),
    "pending": Outcome(":large_blue_circle:", "is pending"),
    "created": Outcome(":large_blue_circle:", "was created"),
    "manual": Outcome(":raised_hand:", "is waiting for a manual job"),
}


def _pipeline(p: Payload) -> Rendered | None:
    pipeline = dict_at(p, "object_attributes")
    pipeline_id, project_id = int_at(pipeline, "id"), _project_id(p)
    ref = text_at(pipeline, "ref")
    if not _project(p) or pipeline_id is None or project_id is None:
        return None
    status = text_at(pipeline, "status")
    outcome = _PIPELINE_OUTCOMES.get(status) or Outcome(":white_circle:", status or "changed")
    url = (
        text_at(pipeline, "url") or f"{text_at(p, 'project', 'web_url')}/-/pipelines/{pipeline_id}"
    )
    headline = f"{outcome.emoji} *{bk.link(url, f'Pipeline #{pipeline_id}')}* {outcome.verb}"
    subject = first_line(first_text(p, [("commit", "title"), ("commit", "message")]))
    blocks = [
        bk.section(f"{headline} on {code(ref)}\n{esc(subject)}"),
        bk.fields(_pipeline_facts(p)),
    ]
    failed = _failed_builds(p)
    if failed:
        blocks.append(bk.section(bk.join_within(["*Failed jobs*", *failed], noun="jobs")))
    text = f"[{_project(p)}] Pipeline #{pipeline_id} {outcome.verb} on {ref}"
    return rendered(esc(text), blocks, f"gitlab:{project_id}:pipeline:{ref}", outcome)


def _pipeline_facts(p: Payload) -> list[str]:
    sha = text_at(p, "commit", "id") or text_at(p, "object_attributes", "sha")
    commit = bk.link(text_at(p, "commit", "url"), f"`{short_sha(sha, 8)}`") if sha else ""
    seconds = dig(p, "object_attributes", "duration")
    timed = isinstance(seconds, int | float) and not isinstance(seconds, bool)
    took = duration(seconds) if timed else ""
    return present(
        [
            field("Project", _project_link(p)),
            optional_field("Commit", commit),
            optional_field("Triggered by", esc(_user(p))),
            optional_field("Duration", took),
            optional_field("Source", esc(text_at(p, "object_attributes", "source"))),
        ]
    )


def _failed_builds(p: Payload) -> list[str]:
    web_url = text_at(p, "project", "web_url")
    builds = mapping_items(dig(p, "builds"))
    return [_failed_line(web_url, b) for b in builds if text_at(b, "status") == "failed"]


def _failed_line(web_url: str, build: Payload) -> str:
    """ "• `job` (stage): failure_reason", the job linking to its log."""
    job = bk.link(f"{web_url}/-/jobs/{text_at(build, 'id')}", f"`{text_at(build, 'name')}`")
    stage, reason = text_at(build, "stage"), text_at(build, "failure_reason")
    parts = [
        f" ({esc(stage)})" if stage else "",
        f": {esc(reason)}" if reason else "",
        " _(allowed to fail)_" if dig(build, "allow_failure") is True else "",
    ]
    return f"• {job}{''.join(parts)}"


_BY_EVENT: dict[str, Callable[[Payload], Rendered | None]] = {
    "Push Hook": _push,
    "Tag Push Hook": _push,
    "Merge Request Hook": _merge_request,
    "Pipeline Hook": _pipeline,
}
