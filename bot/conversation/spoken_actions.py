"""Actions, as people ask for them: "restart api now", "call crm with email=a@b.c", "when
the site check goes down, run restart-api", "send each new lead to crm", "put a restart
button on the site alerts", "what did crm do?".

`read_action` reads the words against the names of the team's actions (an action is only
ever meant when one of its names is said: "restart api now" runs *restart-api* only if it
exists) and `answer` turns them into the exact slash command, finding the trigger or hook
meant with the same matcher as changes by talking (`bot.conversation.changes.match`). Both
are pure; the conversation checks permissions and asks Apply / Cancel.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Final, Literal

from bot.conversation import changes as said

ActionVerb = Literal["run", "wire", "list", "show", "log", "create"]
Event = Literal["problem", "recover", "item", "always"]
READ_ONLY: Final[frozenset[ActionVerb]] = frozenset({"list", "show", "log", "create"})
ADD_FORM: Final = "/action add NAME {method} {url}"
_FLAGS: Final = re.IGNORECASE
_LONGEST: Final = 240
_RUN: Final = r"(?:run|call|fire|trigger|execute|invoke|kick\s+off|hit|ping|use)"
_WHEN: Final = r"(?:when(?:ever)?|if|each\s+time|every\s+time|as\s+soon\s+as|once)"
_EVENTS: Final[tuple[tuple[Event, str], ...]] = (
    (
        "recover",
        r"(?:recovers|comes\s+back(?:\s+up|\s+online)?|is\s+back(?:\s+up)?|is\s+up\s+again|"
        r"goes\s+green|is\s+fixed|works\s+again)",
    ),
    (
        "problem",
        r"(?:goes\s+down|is\s+down|fails|has\s+failed|breaks|is\s+broken|has\s+a\s+problem|"
        r"errors|is\s+failing|alerts|goes\s+red|is\s+unreachable|goes\s+offline|is\s+offline|"
        r"returns\s+an\s+error|times\s+out|dies|crashes)",
    ),
    (
        "item",
        r"(?:(?:has|finds|sees|gets|picks\s+up|brings)\s+(?:a\s+|any\s+)?new\s+\w+(?:\s+\w+)?|"
        r"has\s+something\s+new)",
    ),
    ("always", r"(?:runs|checks|is\s+checked)"),
)
_EVENT: Final = "|".join(f"(?P<{name}>{words})" for name, words in _EVENTS)
_PARAMS: Final = r"(?:\s+(?:with|using|passing|for)\s+(?P<params>.+)|\s+(?P<inline>\w+=.+))?"
_NOW: Final = r"(?:\s+(?:right\s+)?now|\s+again|\s+please)*"
_QUIET: Final = (
    r"(?P<quiet>\s*,?\s*(?:and\s+|but\s+)?(?:don'?t|do\s+not|dont|never|without)\s+"
    r"(?:post(?:ing)?|say(?:ing)?\s+anything|tell(?:ing)?\s+(?:slack|anyone|the\s+channel)|"
    r"an?\s+(?:slack\s+)?(?:message|post)|messages?|notify(?:ing)?)(?:\s+\w+)*|"
    r"\s*,?\s*(?:silently|quietly))?"
)
_ITEM_WORDS: Final = frozenset(
    {"item", "items", "entry", "entries", "row", "rows", "record", "records", "from", "in",
     "of", "on", "one", "ones", "each", "every", "all", "any", "new", "post", "posts",
     "article", "articles", "result", "results", "delivery", "deliveries", "submission",
     "submissions", "payload", "payloads", "request", "requests", "event", "events"}
)  # fmt: skip
_HOOK_WORDS: Final = r"(?:deliver(?:y|ies)|submissions?|payloads?|requests?|events?|forms?|posts?)"

_LIST: Final = (
    re.compile(
        r"^(?:what|which)\s+actions\s+(?:do\s+(?:i|we)\s+have|have\s+(?:i|we)\s+(?:got|set\s+up)|"
        r"are\s+there|exist|can\s+(?:i|you|we)\s+(?:run|use|call)|are\s+(?:set\s+up|available))$",
        _FLAGS,
    ),
    re.compile(
        r"^(?:list|show)(?:\s+me)?\s+(?:(?:my|our|the)\s+|all(?:\s+(?:my|our|the))?\s+)?actions$",
        _FLAGS,
    ),
    re.compile(r"^(?:my|our|all)\s+actions$", _FLAGS),
)
_LOG: Final = (
    re.compile(r"^what\s+(?:did|has)\s+(?P<action>.+?)\s+(?:do|done)(?:\s+\w+)?$", _FLAGS),
    re.compile(
        r"^(?:show(?:\s+me)?\s+|what(?:'s|’s| is| are)\s+)?(?:the\s+)?(?:log|runs|history|last\s+runs)"
        r"\s+(?:of|for)\s+(?P<action>.+)$",
        _FLAGS,
    ),
    re.compile(r"^(?:show(?:\s+me)?\s+)?(?P<action>.+?)(?:'s|’s)\s+(?:log|runs|history)$", _FLAGS),
    re.compile(
        r"^(?:did|has)\s+(?P<action>.+?)\s+(?:run|work(?:ed)?|succeed(?:ed)?|fail(?:ed)?)"
        r"(?:\s+\w+)*$",
        _FLAGS,
    ),
    re.compile(r"^(?:how\s+did|when\s+did)\s+(?P<action>.+?)\s+(?:go|last\s+run|run)$", _FLAGS),
)
_SHOW: Final = re.compile(
    r"^(?:show(?:\s+me)?|describe|details\s+(?:of|for)|tell\s+me\s+about|what\s+is|what's|"
    r"what\s+does)\s+(?P<action>.+?)(?:\s+(?:do|look\s+like|send))?$",
    _FLAGS,
)
_CREATE: Final = re.compile(
    r"^(?:(?:can\s+you\s+|please\s+|i\s+(?:want|need)\s+to\s+)?(?:create|make|add|set\s+up|build|"
    r"define)|(?:i\s+)?(?:want|need)|new)\s+(?:me\s+)?(?:an?\s+|one\s+|new\s+)*action\b(?P<rest>.*)$",
    _FLAGS,
)
_WIRES: Final = (
    re.compile(  # when the site check goes down, run restart-api
        rf"^{_WHEN}\s+(?P<subject>.+?)\s+(?:{_EVENT})\s*,?\s*(?:then\s+|please\s+)?"
        rf"(?:(?:{_RUN}|send\s+it\s+to)\s+)?(?P<action>.+?)$",
        _FLAGS,
    ),
    re.compile(  # run restart-api when site fails
        rf"^(?:{_RUN}\s+)?(?P<action>.+?)\s+{_WHEN}\s+(?P<subject>.+?)\s+(?:{_EVENT})$", _FLAGS
    ),
)
_CONNECT: Final = re.compile(  # hook up restart-api to the site check so it runs when …
    r"^(?:hook\s+up|connect|wire(?:\s+up)?|attach|link|tie|plug)\s+(?P<action>.+?)\s+"
    r"(?:up\s+)?(?:to|with|into)\s+(?P<subject>.+?)(?:\s*,?\s*so\s+(?:that\s+)?it\s+"
    rf"(?:runs|fires|gets\s+called)\s+{_WHEN}\s+(?:.+?)\s+(?:{_EVENT}))?{_QUIET}$",
    _FLAGS,
)
_SHOULD: Final = re.compile(  # every new lead should go to crm
    r"^(?P<subject>.+?)\s+(?:should|must|needs?\s+to|has\s+to|have\s+to)\s+(?:go|be\s+sent|"
    r"get\s+sent|be\s+passed|be\s+forwarded|be\s+pushed)\s+(?:on\s+|over\s+)?(?:to|into)\s+"
    rf"(?:the\s+)?(?P<action>[^<#].*?){_QUIET}$",
    _FLAGS,
)
_BUTTON_FOR: Final = re.compile(  # add a button for restart-api on the site check
    r"^(?:put|add|give|place|i\s+want|attach|can\s+(?:i|we)\s+(?:get|have))\s+(?:me\s+)?"
    r"(?:an?\s+|the\s+)?buttons?\s+(?:for|to\s+run|that\s+runs)\s+(?P<action>.+?)\s+"
    r"(?:on|under|to|below|beneath|in|with)\s+(?P<subject>.+?)$",
    _FLAGS,
)
_HOOK_WIRE: Final = re.compile(  # when a form arrives on the form hook, send it to crm
    rf"^{_WHEN}\s+(?:an?\s+|the\s+)?(?:\w+\s+)?{_HOOK_WORDS}\s+(?:arrives|comes\s+in|"
    r"is\s+(?:submitted|received|posted|sent)|lands|gets\s+in)\s+(?:on|at|to|via|through|in)\s+"
    rf"(?P<subject>.+?)\s*,?\s*(?:then\s+)?(?:send|pass|forward|push|post|hand)\s+(?:it|them)\s+"
    rf"(?:on\s+|over\s+)?to\s+(?P<action>.+?){_QUIET}$",
    _FLAGS,
)
_SEND: Final = re.compile(  # send each new lead to crm
    r"^(?:send|push|forward|pass|post|hand|copy|sync)\s+(?P<subject>.+?)\s+(?:on\s+|over\s+)?"
    rf"(?:to|into)\s+(?:the\s+)?(?P<action>[^<#].*?){_QUIET}$",
    _FLAGS,
)
_BUTTON: Final = re.compile(  # put a restart button on the site alerts
    r"^(?:put|add|give|place|show|i\s+want|attach|can\s+(?:i|we)\s+(?:get|have))\s+"
    r"(?:me\s+)?(?:an?\s+|the\s+)?(?P<action>.+?)\s+buttons?\s+(?:on|under|to|below|beneath|in|with)\s+(?P<subject>.+?)$",
    _FLAGS,
)
_GIVE: Final = re.compile(  # give the site alerts a restart button
    r"^give\s+(?P<subject>.+?)\s+(?:an?\s+)(?P<action>.+?)\s+button$", _FLAGS
)
_RUN_NOW: Final = re.compile(rf"^(?:please\s+)?{_RUN}\s+(?P<action>.+?){_NOW}{_PARAMS}$", _FLAGS)
_BARE: Final = re.compile(rf"^(?P<action>.+?)(?:\s+(?:right\s+)?now){_PARAMS}$", _FLAGS)
_LEADING: Final = re.compile(r"^(?:(?:go\s+ahead\s+and|just|ok(?:ay)?|so|now)\s+)+", _FLAGS)
_PAIR: Final = re.compile(r"^(?P<key>[a-z_][\w.-]*)=(?P<value>\S+)$", _FLAGS)
_SLACK_LINK: Final = re.compile(r"<(?:mailto:)?([^>|]+)(?:\|[^>]*)?>")
_URL: Final = re.compile(r"<(https?://[^>|\s]+)(?:\|[^>]*)?>|(https?://\S+)")
_METHODS: Final = (("PATCH", r"\bpatch"), ("PUT", r"\bput\b"), ("DELETE", r"\bdelete"))
_NOISE: Final = frozenset({"the", "my", "our", "a", "an", "action", "actions", "hook", "please"})
_POSSESSIVE: Final = re.compile(r"(?<=\w)(?:'s|’s)\b")
_SUBJECT_END: Final = re.compile(r"\s+(?:alerts?|messages?|posts|notifications?|warnings?)$")


@dataclass(frozen=True)
class ActionRequest:
    """What is asked about actions: ``action`` is the action's name (as the team has it);
    ``subject`` the words naming the trigger or hook to wire (see `changes.ChangeRequest`)."""

    verb: ActionVerb
    action: str = ""
    params: tuple[tuple[str, str], ...] = ()
    subject: str = ""
    said: str = ""
    kinds: frozenset[str] = frozenset()
    on: Event | None = None
    quiet: bool = False
    buttons: bool = False
    url: str | None = None
    method: str = "POST"


@dataclass(frozen=True)
class Proposed:
    """The exact command ``request`` becomes (with the trigger or hook it changes)."""

    request: ActionRequest
    command: str
    thing: said.Candidate | None = None


@dataclass(frozen=True)
class Unsure:
    """One question instead of a guess: several things fit, none does, or a word is unread."""

    slot: str  # "thing", "params" or "which" (an action and a trigger share the name)
    text: str
    choices: tuple[said.Candidate, ...] = ()
    request: ActionRequest | None = None  # what a chosen thing completes


def answer(
    message: str, actions: Sequence[str], things: Sequence[said.Candidate]
) -> Proposed | Unsure | None:
    """The command ``message`` (filler stripped) asks for, a question, or None when it
    is not about actions."""
    request = read_action(message, actions)
    if request is None:
        return None
    if isinstance(request, Unsure):
        return request
    if request.verb in ("run", "show", "log") and "action" not in message.lower():
        same = [c for c in things if c.name == request.action]
        if same:  # "run crm now": the action, or the trigger called crm?
            name, kind = request.action, _kind(same[0])
            verb = "run" if request.verb == "run" else "show"
            return Unsure(
                "which",
                f"*{name}* is both an action and a {kind}: say `{verb} the {name} action`, "
                f"or `{verb} the {name} {kind}{' now' if verb == 'run' else ''}`.",
            )
    if request.verb != "wire":
        return Proposed(request, command_of(request, None))
    change = said.ChangeRequest("show", request.subject, request.said, request.kinds)
    found = said.match(change, things) if request.subject else []
    if not found and request.kinds and request.subject:  # "the blog check" for a feed
        found = said.match(replace(change, kinds=frozenset()), things)
    if len(found) != 1:
        return _which(request, found, things)
    thing = found[0]
    if thing.thing == "hook" and request.on not in (None, "always", "item") and not request.buttons:
        return Unsure(
            "thing",
            f"*{thing.name}* is a hook: it runs actions for each delivery, it doesn't go down. "
            f"Did you mean `/hook set {thing.name} then={request.action}`?",
        )
    return Proposed(request, command_of(request, thing), thing)


def read_action(message: str, actions: Sequence[str]) -> ActionRequest | Unsure | None:
    """What ``message`` asks about the actions named ``actions``, or None."""
    if len(message) > _LONGEST:
        return None
    text = _LEADING.sub("", " ".join(message.split()).rstrip("?!. "))
    if any(pattern.match(text) for pattern in _LIST):
        return ActionRequest("list")
    created = _CREATE.match(text)
    if created:
        return _create(created.group("rest"))
    for pattern in (_HOOK_WIRE, *_WIRES, _CONNECT, _BUTTON_FOR, _BUTTON, _GIVE, _SEND, _SHOULD):
        found = pattern.match(text)
        button = pattern in (_BUTTON, _GIVE, _BUTTON_FOR)
        name = found and _action_named(found.group("action"), actions, loose=button)
        if found and name:
            return _wire(found, name, buttons=button, hook=pattern is _HOOK_WIRE)
    for pattern in _LOG:
        found = pattern.match(text)
        name = found and _action_named(found.group("action"), actions)
        if found and name:
            return ActionRequest("log", name)
    found = _SHOW.match(text)
    name = found and _action_named(found.group("action"), actions)
    if found and name:
        return ActionRequest("show", name)
    words = re.findall(r"[a-z0-9]+", text.lower())
    naming = [w for w in words if w not in _NOISE]
    if len(naming) > 1 and not {"action", "actions", "hook"} & set(words):
        bare = _action_named(text, actions)  # "restart the api": the words are the name
        if bare:
            return ActionRequest("run", bare)
    for pattern in (_RUN_NOW, _BARE):
        found = pattern.match(text)
        name = found and _action_named(found.group("action"), actions, loose=pattern is _RUN_NOW)
        if found and name:
            return _run(name, found.group("params") or found.group("inline"))
    return None


def command_of(
    request: ActionRequest, thing: said.Candidate | None, wired: Sequence[str] = ()
) -> str:
    """The slash command that does what ``request`` asks (``thing``: the one it wires,
    ``wired``: the actions it already runs or shows, which stay)."""
    if request.verb == "list":
        return "/action list"
    if request.verb in ("show", "log"):
        return f"/action {request.verb} {request.action}"
    if request.verb == "create":
        return ADD_FORM.format(method=request.method, url=request.url or "https://…")
    if request.verb == "run":
        pairs = " ".join(f"{key}={value}" for key, value in request.params)
        return f"/action run {request.action} {pairs}".rstrip()
    assert thing is not None
    names = ",".join(dict.fromkeys([*wired, request.action]))
    if request.buttons:
        return f"/{_kind(thing)} set {thing.name} buttons={names}"
    if thing.thing == "hook":
        quiet = " post=off" if request.quiet else ""
        return f"/hook set {thing.name} then={names}{quiet}"
    return f"/trigger set {thing.name} then={names} on={request.on or 'problem'}"


def stored(request: ActionRequest) -> dict[str, object]:
    """``request`` as a draft keeps it (JSON)."""
    return {
        "verb": request.verb, "action": request.action, "params": [list(p) for p in request.params],
        "subject": request.subject, "said": request.said, "kinds": sorted(request.kinds),
        "on": request.on, "quiet": request.quiet, "buttons": request.buttons,
    }  # fmt: skip


def restored(kept: object) -> ActionRequest | None:
    """The request `stored` kept, or None when ``kept`` is not one."""
    if not isinstance(kept, dict) or kept.get("verb") not in ("run", "wire"):
        return None
    on = kept.get("on")
    return ActionRequest(
        kept["verb"], str(kept.get("action", "")),
        params=tuple((str(k), str(v)) for k, v in kept.get("params") or []),
        subject=str(kept.get("subject", "")), said=str(kept.get("said", "")),
        kinds=frozenset(str(k) for k in kept.get("kinds") or []),
        on=on if on in ("problem", "recover", "item", "always") else None,
        quiet=bool(kept.get("quiet")), buttons=bool(kept.get("buttons")),
    )  # fmt: skip


def _kind(thing: said.Candidate) -> str:
    return "hook" if thing.thing == "hook" else "trigger"


def _which(
    request: ActionRequest, found: Sequence[said.Candidate], things: Sequence[said.Candidate]
) -> Unsure:
    if found:
        names = ", ".join(f"*{c.name}*" for c in found[:5])
        return Unsure(
            "thing", f'Which one should run *{request.action}*? "{request.said}" fits {names}.',
            tuple(found[:5]), request,
        )  # fmt: skip
    yours = ", ".join(f"*{c.name}*" for c in things[:10]) or "none yet"
    return Unsure(
        "thing",
        f'Which trigger or hook should run *{request.action}*? I couldn\'t find "{request.said}". '
        f"Yours: {yours}.",
    )


def _wire(found: re.Match[str], name: str, *, buttons: bool, hook: bool) -> ActionRequest:
    groups = found.groupdict()
    event = next((e for e, _ in _EVENTS if groups.get(e)), None)
    words = _POSSESSIVE.sub("", found.group("subject").strip())
    words = _SUBJECT_END.sub("", words) if buttons else words
    subject, kinds = said.subject_of(words)
    on: Event | None = event
    if event is None and not buttons and "problem" not in found.re.groupindex:
        on = "item"  # "send each new lead to crm" (no event could be said)
    naming = [w for w in subject.split() if w not in _ITEM_WORDS]
    subject = " ".join(naming) if naming else subject
    if hook:
        kinds = frozenset({"hook"})
    return ActionRequest(
        "wire", name, subject=subject, said=words.strip(), kinds=kinds, on=on,
        quiet=bool(groups.get("quiet")), buttons=buttons,
    )  # fmt: skip


def _run(name: str, given: str | None) -> ActionRequest | Unsure | None:
    if not given:
        return ActionRequest("run", name)
    pairs: list[tuple[str, str]] = []
    for word in re.split(r"\s*,\s*|\s+and\s+|\s+", given.strip()):
        pair = _PAIR.match(_SLACK_LINK.sub(r"\1", word))
        if pair is None:
            return Unsure(
                "params",
                f'I couldn\'t read "{word}" as key=value for *{name}*: '
                f"e.g. `/action run {name} email=ann@example.com`.",
            )
        pairs.append((pair["key"].lower(), pair["value"]))
    return ActionRequest("run", name, params=tuple(pairs))


def _create(rest: str) -> ActionRequest:
    link = _URL.search(rest)
    url = None if link is None else (link.group(1) or link.group(2))
    method = next((m for m, words in _METHODS if re.search(words, rest, _FLAGS)), "POST")
    return ActionRequest("create", url=url, method=method)


def _action_named(words: str, actions: Sequence[str], *, loose: bool = False) -> str | None:
    """The action ``words`` name: its name ("restart-api", "restart api", "the crm action"),
    or, when ``loose``, the one action whose name holds every word ("restart")."""
    kept = [w for w in re.split(r"[^a-z0-9_]+", words.lower()) if w and w not in _NOISE]
    if not kept or "<" in words or "://" in words:
        return None
    slug = "-".join(kept)
    names = {name.lower(): name for name in actions}
    for candidate in (slug, slug.replace("-", "_"), slug.replace("-", "")):
        if candidate in names:
            return names[candidate]
    if not loose:
        return None
    fits = [n for n in actions if set(kept) <= set(re.split(r"[^a-z0-9]+", n.lower()))]
    return fits[0] if len(fits) == 1 else None
