"""The readable part of a mail body: HTML to text, quoted replies and signatures trimmed.

Nothing here fetches anything: HTML is only tokenised, so remote images, stylesheets and
links are never requested. Trimming is heuristic and conservative: it removes what mail
clients mark recognisably (``>`` quotes, "On ... wrote:", "-----Original Message-----",
Outlook's "From:/Sent:" block, the ``-- `` signature separator, "Sent from my ...") and
keeps the text untouched when trimming would leave nothing.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

# Elements whose content is not text a reader sees, or is a quoted earlier message.
_HIDDEN = frozenset({"head", "style", "script", "title", "template", "noscript", "blockquote"})
_QUOTE_CLASSES = frozenset({"gmail_quote", "gmail_signature", "moz-signature", "yahoo_quoted"})
_BLOCKS = frozenset(
    {
        "address", "article", "aside", "dd", "div", "dl", "dt", "footer", "h1", "h2", "h3",
        "h4", "h5", "h6", "header", "hr", "li", "ol", "p", "pre", "section", "table", "tr",
        "ul",
    }
)  # fmt: skip
# HTML beyond this many characters is not read: the preview needs its start only.
MAX_HTML_CHARS = 2_000_000

_BLANK_LINES = re.compile(r"\n[ \t]*(?:\n[ \t]*){2,}")
_TRAILING_SPACE = re.compile(r"[ \t]+\n")
_LEADING_SPACE = re.compile(r"\n[ \t]+")
_WHITESPACE = re.compile(r"\s+")

_ATTRIBUTION = re.compile(
    r"^\s*(On\b.{0,300}\bwrote|Am\b.{0,300}\bschrieb\b.{0,200}|Le\b.{0,300}\ba écrit"
    r"|El\b.{0,300}\bescribió)"
    r"\s*:\s*$",
    re.IGNORECASE,
)
_ATTRIBUTION_START = re.compile(r"^\s*(On|Am|Le|El)\s", re.IGNORECASE)
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{2,}\s*(Original Message|Ursprüngliche Nachricht)\s*-{2,}\s*$", re.I
)
_OUTLOOK_FROM = re.compile(r"^\s*\*?(From|Von|De)\s*:\*?\s", re.IGNORECASE)
# "Sent:" rather than "Date:": a forwarded message's "From:/Date:" block is content to keep.
_OUTLOOK_SENT = re.compile(r"^\s*\*?(Sent|Gesendet|Envoyé)\s*:\*?\s", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_MOBILE_FOOTER = re.compile(r"^\s*(Sent from my |Sent from Outlook|Get Outlook for )", re.I)


class _TextExtractor(HTMLParser):
    """Collects visible text; block elements become line breaks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden_tag: str | None = None
        self._hidden_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hidden_tag is not None:
            self._enter_hidden(tag)
            return
        classes = set((dict(attrs).get("class") or "").split())
        if tag in _HIDDEN or classes & _QUOTE_CLASSES:
            self._hidden_tag, self._hidden_depth = tag, 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n• ")
        elif tag in _BLOCKS:
            self.parts.append("\n")

    def _enter_hidden(self, tag: str) -> None:
        if tag == self._hidden_tag:
            self._hidden_depth += 1
        elif tag == "body" and self._hidden_tag == "head":
            self._hidden_tag = None  # an unclosed <head>: the body starts anyway

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._hidden_tag is None and tag in {"br", "hr"}:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self._hidden_tag is not None:
            if tag == self._hidden_tag:
                self._hidden_depth -= 1
                if self._hidden_depth == 0:
                    self._hidden_tag = None
        elif tag in _BLOCKS and tag != "li":  # the next item starts its own line
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._hidden_tag is None:
            self.parts.append(_WHITESPACE.sub(" ", data))


def tidy(text: str) -> str:
    """Line ends normalised, trailing spaces dropped, runs of blank lines cut to one."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _TRAILING_SPACE.sub("\n", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def html_to_text(markup: str) -> str:
    """The visible text of an HTML mail body, with paragraphs and line breaks kept."""
    extractor = _TextExtractor()
    try:
        extractor.feed(markup[:MAX_HTML_CHARS])
        extractor.close()
    except (AssertionError, ValueError):  # _markupbase asserts on some broken declarations
        pass
    text = _LEADING_SPACE.sub("\n", "".join(extractor.parts))
    return tidy(text)


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join the soft line breaks of ``format=flowed`` text (RFC 3676)."""
    lines = text.split("\n")
    joined: list[str] = []
    carry = ""
    for line in lines:
        current = carry + line
        if line.endswith(" ") and line.rstrip() != "--":
            carry = current[:-1] if delsp else current
        else:
            joined.append(current)
            carry = ""
    if carry:
        joined.append(carry)
    return "\n".join(joined)


def _is_quoted(line: str) -> bool:
    return line.lstrip().startswith(">")


def _attribution_span(lines: list[str], index: int) -> int:
    """How many lines an "On ... wrote:" attribution at ``index`` spans (0: none)."""
    if _ATTRIBUTION.match(lines[index]):
        return 1
    if (
        index + 1 < len(lines)
        and _ATTRIBUTION_START.match(lines[index])
        and _ATTRIBUTION.match(lines[index] + " " + lines[index + 1])
    ):
        return 2
    return 0


def _next_content(lines: list[str], index: int) -> str:
    for line in lines[index:]:
        if line.strip():
            return line
    return ""


def _starts_forwarded_block(lines: list[str], index: int) -> bool:
    """The start of an earlier message quoted in full, Outlook style, or a signature."""
    line = lines[index]
    if line.rstrip() in {"--", "-- "} or _ORIGINAL_MESSAGE.match(line):
        return True
    if _MOBILE_FOOTER.match(line):
        return True
    if _UNDERSCORES.match(line):
        return bool(_OUTLOOK_FROM.match(_next_content(lines, index + 1)))
    if _OUTLOOK_FROM.match(line):
        following = lines[index + 1 : index + 4]
        return any(_OUTLOOK_SENT.match(other) for other in following)
    return False


def _without_quotes(lines: list[str]) -> list[str]:
    kept: list[str] = []
    index = 0
    while index < len(lines):
        if _starts_forwarded_block(lines, index):
            break
        span = _attribution_span(lines, index)
        if span and (_is_quoted(_next_content(lines, index + span)) or index + span >= len(lines)):
            index += span
            continue
        if not _is_quoted(lines[index]):
            kept.append(lines[index])
        index += 1
    return kept


def trim_reply(text: str) -> str:
    """``text`` without quoted earlier messages and the sender's signature.

    The text is returned as it was when trimming would leave nothing (a message that is
    only a quote is still worth showing).
    """
    trimmed = tidy("\n".join(_without_quotes(text.split("\n"))))
    return trimmed or tidy(text)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in an ellipsis when cut."""
    if len(text) <= limit:
        return text
    if limit <= 1:
        return "…"[:limit]
    return text[: limit - 1].rstrip() + "…"
