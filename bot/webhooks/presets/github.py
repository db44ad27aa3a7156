"""GitHub deliveries as Slack messages, one renderer per ``X-GitHub-Event``."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
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
    Commit,
    Outcome,
    arrows,
    commit_list,
    field,
    mapping_items,
    optional_field,
    present,
    ref_name,
    rendered,
)

Payload = Mapping[str, Any]
BODY_EXCERPT_MAX = 500


def render_github(event: InboundEvent) -> Rendered | None:
    """Render a GitHub delivery; None when the event or payload is not one we know."""
    renderer = _BY_EVENT.get(event.event)
    if renderer is None or not isinstance(event.payload, Mapping):
        return None
    return renderer(event.payload)


# --- shared bits -------------------------------------------------------------------


def _repo(p: Payload) -> str:
    return text_at(p, "repository", "full_name")


def _repo_link(p: Payload) -> str:
    return bk.link(text_at(p, "repository", "html_url"), _repo(p))


def _actor(p: Payload) -> str:
    return text_at(p, "sender", "login")


def _commit_link(p: Payload, sha: str) -> str:
    repo_url = text_at(p, "repository", "html_url")
    label = f"`{short_sha(sha).replace('`', '')}`"
    return bk.link(f"{repo_url}/commit/{quote(sha)}", label) if repo_url else label


# --- push --------------------------------------------------------------------------


def _push(p: Payload) -> Rendered | None:
    kind, name = ref_name(text_at(p, "ref"))
    if not _repo(p) or not name:
        return None
    pusher = first_text(p, [("pusher", "name"), ("sender", "login")]) or "Someone"
    if dig(p, "deleted") is True:
        return _push_deleted(p, kind, name, pusher)
    commits = _commits(p)
    if kind == "tag" or not commits:
        return _push_ref_only(p, kind, name, pusher)
    return _push_commits(p, name, pusher, commits)


def _commits(p: Payload) -> list[Commit]:
    return [
        Commit(
            sha=text_at(c, "id"),
            url=text_at(c, "url"),
            message=text_at(c, "message"),
            author=first_text(c, [("author", "username"), ("author", "name")]),
        )
        for c in mapping_items(dig(p, "commits"))
    ]


def _push_deleted(p: Payload, kind: str, name: str, pusher: str) -> Rendered:
    line = f":wastebasket: *{esc(pusher)}* deleted {kind} {code(name)} in {_repo_link(p)}"
    text = f"[{_repo(p)}] {pusher} deleted {kind} {name}"
    return rendered(esc(text), [bk.section(line)])


def _push_ref_only(p: Payload, kind: str, name: str, pusher: str) -> Rendered:
    ref_link = _tree_link(p, name)
    if kind == "tag":
        emoji, verb = ":label:", "pushed tag"
    elif dig(p, "created") is True:
        emoji, verb = ":seedling:", "created branch"
    else:
        emoji, verb = ":arrow_up:", "force-pushed to" if dig(p, "forced") is True else "pushed to"
    line = f"{emoji} *{esc(pusher)}* {verb} {ref_link} in {_repo_link(p)}"
    text = f"[{_repo(p)}] {pusher} {verb} {name}"
    return rendered(esc(text), [bk.section(line), *_compare_context(p)])


def _push_commits(p: Payload, branch: str, pusher: str, commits: list[Commit]) -> Rendered:
    verb = "force-pushed" if dig(p, "forced") is True else "pushed"
    count = plural(len(commits), "commit")
    line = (
        f":arrow_up: *{esc(pusher)}* {verb} {count} to {_tree_link(p, branch)} in {_repo_link(p)}"
    )
    blocks = [bk.section(line), bk.section(commit_list(commits, len(commits)))]
    text = f"[{_repo(p)}] {pusher} {verb} {count} to {branch}"
    return rendered(esc(text), [*blocks, *_compare_context(p)])


def _tree_link(p: Payload, name: str) -> str:
    repo_url = text_at(p, "repository", "html_url")
    label = f"`{name.replace('`', '')}`"
    return bk.link(f"{repo_url}/tree/{quote(name)}", label) if repo_url else code(name)


def _compare_context(p: Payload) -> list[bk.Block]:
    compare = text_at(p, "compare")
    return [bk.context([bk.link(compare, "Compare changes")])] if compare else []


# --- pull requests and issues --------------------------------------------------------

_PR_OUTCOMES = {
    "opened": Outcome(":large_green_circle:", "opened"),
    "reopened": Outcome(":large_green_circle:", "reopened", "arrows_counterclockwise", True),
    "merged": Outcome(":large_purple_circle:", "merged", "white_check_mark", True),
    "closed": Outcome(":red_circle:", "closed", "no_entry_sign", True),
    "ready_for_review": Outcome(":large_green_circle:", "marked ready for review"),
    "converted_to_draft": Outcome(":white_circle:", "converted to draft"),
}

_ISSUE_OUTCOMES = {
    "opened": Outcome(":large_green_circle:", "opened"),
    "reopened": Outcome(":large_green_circle:", "reopened", "arrows_counterclockwise", True),
    "closed": Outcome(":white_check_mark:", "closed", "white_check_mark", True),
    "closed:not_planned": Outcome(
        ":heavy_minus_sign:", "closed as not planned", "no_entry_sign", True
    ),
}


def _pull_request(p: Payload) -> Rendered | None:
    pr = dict_at(p, "pull_request")
    number = int_at(pr, "number")
    if not _repo(p) or number is None:
        return None
    outcome = _pr_outcome(text_at(p, "action"), pr)
    facts = present(
        [
            field("Author", esc(text_at(pr, "user", "login")) or "—"),
            field("Branches", arrows(text_at(pr, "base", "ref"), text_at(pr, "head", "ref"))),
            optional_field("Merged by", esc(text_at(pr, "merged_by", "login"))),
            optional_field("Changes", _pr_changes(pr)),
        ]
    )
    key = f"github:{_repo(p)}:pr:{number}"
    return _item(p, "pull request", pr, number, outcome, facts, key)


def _pr_outcome(action: str, pr: Payload) -> Outcome:
    key = "merged" if action == "closed" and dig(pr, "merged") is True else action
    if key == "opened" and dig(pr, "draft") is True:
        return Outcome(":white_circle:", "opened a draft of")
    return _PR_OUTCOMES.get(key) or _other_action(action)


def _pr_changes(pr: Payload) -> str:
    added, removed, files = (
        int_at(pr, "additions"),
        int_at(pr, "deletions"),
        int_at(pr, "changed_files"),
    )
    if added is None or removed is None or files is None:
        return ""
    return f"+{added} -{removed} in {plural(files, 'file')}"


def _issues(p: Payload) -> Rendered | None:
    issue = dict_at(p, "issue")
    number = int_at(issue, "number")
    if not _repo(p) or number is None:
        return None
    action = text_at(p, "action")
    reason = text_at(issue, "state_reason")
    outcome = _ISSUE_OUTCOMES.get(f"{action}:{reason}") or _ISSUE_OUTCOMES.get(action)
    labels = [text_at(label, "name") for label in list_at(issue, "labels")]
    assignees = [text_at(user, "login") for user in list_at(issue, "assignees")]
    facts = present(
        [
            field("Author", esc(text_at(issue, "user", "login")) or "—"),
            optional_field("Labels", esc(", ".join(present(labels)))),
            optional_field("Assignees", esc(", ".join(present(assignees)))),
        ]
    )
    key = f"github:{_repo(p)}:issue:{number}"
    return _item(p, "issue", issue, number, outcome or _other_action(action), facts, key)


def _other_action(action: str) -> Outcome:
    return Outcome(":large_blue_circle:", action.replace("_", " ") or "updated")


def _item(
    p: Payload,
    noun: str,
    item: Payload,
    number: int,
    outcome: Outcome,
    facts: list[str],
    thread_key: str,
) -> Rendered:
    """The shared shape of pull request and issue messages."""
    title = text_at(item, "title")
    actor = _actor(p) or "Someone"
    headline = f"{outcome.emoji} *{bk.link(text_at(item, 'html_url'), f'#{number} {title}')}*"
    byline = f"{esc(actor)} {esc(outcome.verb)} {noun} #{number} in {_repo_link(p)}"
    text = f"[{_repo(p)}] {actor} {outcome.verb} {noun} #{number}: {title}"
    blocks = [bk.section(f"{headline}\n{byline}"), bk.fields(facts)]
    return rendered(esc(text, 500), blocks, thread_key, outcome)


# --- releases ------------------------------------------------------------------------


def _release(p: Payload) -> Rendered | None:
    release = dict_at(p, "release")
    tag = text_at(release, "tag_name")
    if not _repo(p) or not tag:
        return None
    name = text_at(release, "name") or tag
    kind = "pre-release" if dig(release, "prerelease") is True else "release"
    action = text_at(p, "action") or "published"
    author = text_at(release, "author", "login") or _actor(p) or "Someone"
    headline = f":rocket: *{bk.link(text_at(release, 'html_url'), f'{_repo(p)} {name}')}*"
    byline = f"{esc(author)} {esc(action)} {kind} {code(tag)} in {_repo_link(p)}"
    blocks = [bk.section(f"{headline}\n{byline}")]
    body = text_at(release, "body").strip()
    if body:
        blocks.append(bk.section(esc(body, BODY_EXCERPT_MAX)))
    return rendered(esc(f"[{_repo(p)}] {kind} {name} {action} by {author}"), blocks)


# --- Actions and checks -------------------------------------------------------------

_CONCLUSIONS = {
    "success": Outcome(":white_check_mark:", "succeeded", "white_check_mark", True),
    "failure": Outcome(":x:", "failed", "x", True),
    "timed_out": Outcome(":x:", "timed out", "x", True),
    "startup_failure": Outcome(":x:", "failed to start", "x", True),
    "cancelled": Outcome(":no_entry_sign:", "was cancelled", "no_entry_sign", True),
    "action_required": Outcome(":warning:", "needs action", None, True),
    "skipped": Outcome(":fast_forward:", "was skipped", None, True),
    "neutral": Outcome(":white_circle:", "finished", None, True),
    "stale": Outcome(":white_circle:", "went stale", None, True),
}

_NOT_DONE = {
    "requested": Outcome(":large_blue_circle:", "was requested"),
    "created": Outcome(":large_blue_circle:", "was queued"),
    "queued": Outcome(":large_blue_circle:", "was queued"),
    "waiting": Outcome(":large_blue_circle:", "is waiting"),
    "in_progress": Outcome(":hourglass_flowing_sand:", "is running"),
    "rerequested": Outcome(":large_blue_circle:", "was re-requested"),
}


def _run_outcome(action: str, conclusion: str) -> Outcome:
    """What a run/job/check's action and conclusion mean for Slack."""
    if action != "completed":
        return _NOT_DONE.get(action) or _other_action(action)
    fallback = Outcome(":white_circle:", f"completed ({conclusion or 'no conclusion'})", None, True)
    return _CONCLUSIONS.get(conclusion, fallback)


def _workflow_run(p: Payload) -> Rendered | None:
    run = dict_at(p, "workflow_run")
    workflow_id = int_at(run, "workflow_id")
    if workflow_id is None:
        workflow_id = int_at(p, "workflow", "id")
    if not _repo(p) or workflow_id is None:
        return None
    name = first_text(p, [("workflow", "name"), ("workflow_run", "name")]) or "Workflow"
    branch = text_at(run, "head_branch")
    outcome = _run_outcome(text_at(p, "action"), text_at(run, "conclusion"))
    label = f"{name} #{text_at(run, 'run_number')}".rstrip(" #")
    headline = f"{outcome.emoji} *{bk.link(text_at(run, 'html_url'), label)}* {outcome.verb}"
    subject = first_text(run, [("display_title",), ("head_commit", "message")])
    facts = present(
        [
            field("Repository", _repo_link(p)),
            optional_field("Branch", code(branch)),
            optional_field("Commit", _head_commit(p, text_at(run, "head_sha"))),
            optional_field("Trigger", esc(text_at(run, "event"))),
            optional_field("Actor", esc(text_at(run, "actor", "login"))),
        ]
    )
    blocks = [
        bk.section(f"{headline} on {code(branch)}\n{esc(first_line(subject))}"),
        bk.fields(facts),
    ]
    text = f"[{_repo(p)}] {label} {outcome.verb} on {branch}"
    key = f"github:{_repo(p)}:wf:{workflow_id}:{branch}"
    return rendered(esc(text), blocks, key, outcome)


def _head_commit(p: Payload, sha: str) -> str:
    return _commit_link(p, sha) if sha else ""


def _workflow_job(p: Payload) -> Rendered | None:
    job = dict_at(p, "workflow_job")
    name = text_at(job, "name")
    if not _repo(p) or not name:
        return None
    outcome = _run_outcome(text_at(p, "action"), text_at(job, "conclusion"))
    workflow = text_at(job, "workflow_name")
    where = f" in *{esc(workflow)}*" if workflow else ""
    headline = (
        f"{outcome.emoji} Job *{bk.link(text_at(job, 'html_url'), name)}*{where} {outcome.verb}"
    )
    failed = [text_at(step, "name") for step in list_at(job, "steps") if _step_failed(step)]
    facts = present(
        [
            field("Repository", _repo_link(p)),
            optional_field("Branch", code(text_at(job, "head_branch"))),
            optional_field("Commit", _head_commit(p, text_at(job, "head_sha"))),
            optional_field("Failed steps", esc(", ".join(present(failed)), 500)),
        ]
    )
    text = f"[{_repo(p)}] job {name} {outcome.verb}"
    return rendered(esc(text), [bk.section(headline), bk.fields(facts)])


def _step_failed(step: Any) -> bool:
    return text_at(step, "conclusion") in ("failure", "timed_out")


def _check_run(p: Payload) -> Rendered | None:
    check = dict_at(p, "check_run")
    name = text_at(check, "name")
    if not _repo(p) or not name:
        return None
    # A check belongs in its pull request's thread but must not rewrite the PR's root.
    status = text_at(check, "conclusion") or text_at(check, "status")
    outcome = replace(_run_outcome(text_at(p, "action"), status), reaction=None, updates_root=False)
    branch = text_at(check, "check_suite", "head_branch")
    on = f" on {code(branch)}" if branch else ""
    headline = (
        f"{outcome.emoji} Check *{bk.link(text_at(check, 'html_url'), name)}* {outcome.verb}{on}"
    )
    prs = [n for n in (int_at(pr, "number") for pr in list_at(check, "pull_requests")) if n]
    blocks = [bk.section(headline), bk.fields(_check_facts(p, check, prs)), *_check_output(check)]
    key = f"github:{_repo(p)}:pr:{prs[0]}" if len(prs) == 1 else None
    return rendered(esc(f"[{_repo(p)}] check {name} {outcome.verb}"), blocks, key, outcome)


def _check_facts(p: Payload, check: Payload, prs: list[int]) -> list[str]:
    repo_url = text_at(p, "repository", "html_url")
    pr_links = ", ".join(bk.link(f"{repo_url}/pull/{n}", f"#{n}") for n in prs)
    return present(
        [
            field("Repository", _repo_link(p)),
            optional_field("Commit", _head_commit(p, text_at(check, "head_sha"))),
            optional_field("App", esc(text_at(check, "app", "name"))),
            optional_field("Pull requests", pr_links),
        ]
    )


def _check_output(check: Payload) -> list[bk.Block]:
    title = text_at(check, "output", "title")
    summary = text_at(check, "output", "summary")
    lines = present([f"*{esc(title)}*" if title else "", esc(summary, BODY_EXCERPT_MAX)])
    return [bk.section("\n".join(lines))] if lines else []


# --- ping ----------------------------------------------------------------------------


def _ping(p: Payload) -> Rendered:
    name = _repo(p) or text_at(p, "organization", "login") or "GitHub"
    target = _repo_link(p) if _repo(p) else esc(name)
    zen = text_at(p, "zen")
    lines = [f":wave: Webhook configured for {target}", f"_{esc(zen)}_" if zen else ""]
    blocks = [bk.section("\n".join(present(lines)))]
    events = ", ".join(present([text_at(e) for e in list_at(p, "hook", "events")]))
    if events:
        blocks.append(bk.context([f"Events: {esc(events)}"]))
    return rendered(esc(f"GitHub webhook configured for {name}"), blocks)


_BY_EVENT: dict[str, Callable[[Payload], Rendered | None]] = {
    "push": _push,
    "pull_request": _pull_request,
    "issues": _issues,
    "release": _release,
    "workflow_run": _workflow_run,
    "workflow_job": _workflow_job,
    "check_run": _check_run,
    "ping": _ping,
}
