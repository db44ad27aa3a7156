"""Stripe payment events as Slack messages; other event types use the generic rendering."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from bot.slack import blocks as bk
from bot.webhooks.event import InboundEvent, Rendered
from bot.webhooks.presets._common import code, dig, esc, first_text, int_at, text_at
from bot.webhooks.presets._pieces import Outcome, field, optional_field, present, rendered

Payload = Mapping[str, Any]
DASHBOARD = "https://dashboard.stripe.com/"
# Stripe's zero- and three-decimal currencies (docs.stripe.com/currencies); every other
# currency, including the "special cases" ISK, HUF and TWD, is sent in hundredths.
_ZERO_DECIMAL = frozenset(
    [
        "bif",
        "clp",
        "djf",
        "gnf",
        "jpy",
        "kmf",
        "krw",
        "mga",
        "pyg",
        "rwf",
        "ugx",
        "vnd",
        "vuv",
        "xaf",
        "xof",
        "xpf",
    ]
)
_THREE_DECIMAL = frozenset(["bhd", "jod", "kwd", "omr", "tnd"])
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "jpy": "¥"}
# Ids go into dashboard URLs; Stripe ids are letters, digits and underscores.
_STRIPE_ID = re.compile(r"[A-Za-z0-9_]{1,255}")
_AMOUNT_BITS_MAX = 64


@dataclass(frozen=True)
class _Payment:
    """The facts a payment message shows, read from whichever object the event carries."""

    amount: int | None
    currency: str
    customer: str
    description: str
    failure: str
    dashboard_path: str
    thread_key: str | None


def format_amount(amount: int, currency: str) -> str:
    """A smallest-unit amount as money: (1999, "usd") → "$19.99", (500, "jpy") → "¥500"."""
    iso = currency.lower()
    if amount.bit_length() > _AMOUNT_BITS_MAX:
        return f"(amount too large) {iso.upper()}".rstrip()
    places = 0 if iso in _ZERO_DECIMAL else 3 if iso in _THREE_DECIMAL else 2
    whole, fraction = divmod(abs(amount), 10**places)
    number = f"{whole:,}" + (f".{fraction:0{places}d}" if places else "")
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(iso)
    return f"{sign}{symbol}{number}" if symbol else f"{sign}{number} {iso.upper()}".rstrip()


def render_stripe(event: InboundEvent) -> Rendered | None:
    """Render a Stripe payment event; None for types without a dedicated message."""
    known = _BY_TYPE.get(event.event)
    obj = dig(event.payload, "data", "object")
    if known is None or not isinstance(obj, Mapping):
        return None
    reader, outcome = known
    payment = reader(obj)
    return _message(event.payload, event.event, payment, _adjust(event.event, obj, outcome))


def _adjust(event_type: str, obj: Payload, outcome: Outcome) -> Outcome:
    # A completed Checkout Session paid by bank debit is not paid yet: no success mark.
    status = text_at(obj, "payment_status")
    if event_type == "checkout.session.completed" and status not in ("", "paid"):
        return Outcome(":hourglass_flowing_sand:", f"Checkout completed, payment {status}")
    return outcome


def _message(p: Any, event_type: str, payment: _Payment, outcome: Outcome) -> Rendered:
    live = dig(p, "livemode") is not False
    amount = "" if payment.amount is None else format_amount(payment.amount, payment.currency)
    mode = "" if live else " _(test mode)_"
    headline = f"{outcome.emoji} *{esc(outcome.verb)}*" + (f": *{esc(amount)}*" if amount else "")
    facts = present(
        [
            optional_field("Customer", esc(payment.customer)),
            optional_field("Description", esc(payment.description)),
            optional_field("Failure", esc(payment.failure)),
            field("Event", code(event_type)),
        ]
    )
    blocks = [bk.section(headline + mode), bk.fields(facts), *_dashboard(payment, live)]
    text = " ".join(present([outcome.verb + ":" if amount else outcome.verb, amount]))
    who = f" ({payment.customer})" if payment.customer else ""
    return rendered(esc(f"Stripe: {text}{who}"), blocks, payment.thread_key, outcome)


def _dashboard(payment: _Payment, live: bool) -> list[bk.Block]:
    if not payment.dashboard_path:
        return []
    url = DASHBOARD + ("" if live else "test/") + payment.dashboard_path
    return [bk.context([bk.link(url, "View in the Stripe dashboard")])]


def _stripe_id(value: str) -> str:
    return value if _STRIPE_ID.fullmatch(value) else ""


def _thread(invoice: str, payment_intent: str) -> str | None:
    """Invoice threads first: an invoice's failed and later successful attempts belong together."""
    if _stripe_id(invoice):
        return f"stripe:invoice:{invoice}"
    return f"stripe:payment_intent:{payment_intent}" if _stripe_id(payment_intent) else None


def _path(kind: str, object_id: str) -> str:
    return f"{kind}/{object_id}" if _stripe_id(object_id) else ""


# --- readers, one per object type ------------------------------------------------------


def _charge(obj: Payload) -> _Payment:
    intent = text_at(obj, "payment_intent")
    return _Payment(
        amount=int_at(obj, "amount"),
        currency=text_at(obj, "currency"),
        customer=_customer(obj, ("billing_details", "email"), ("receipt_email",)),
        description=text_at(obj, "description"),
        failure=first_text(obj, [("failure_message",), ("failure_code",)]),
        dashboard_path=_path("payments", _stripe_id(intent) or text_at(obj, "id")),
        thread_key=_thread(text_at(obj, "invoice"), intent),
    )


def _payment_intent(obj: Payload) -> _Payment:
    received = int_at(obj, "amount_received")
    return _Payment(
        amount=received if received else int_at(obj, "amount"),
        currency=text_at(obj, "currency"),
        customer=_customer(obj, ("receipt_email",)),
        description=text_at(obj, "description"),
        failure=text_at(obj, "last_payment_error", "message"),
        dashboard_path=_path("payments", text_at(obj, "id")),
        thread_key=_thread(text_at(obj, "invoice"), text_at(obj, "id")),
    )


def _checkout_session(obj: Payload) -> _Payment:
    intent = text_at(obj, "payment_intent")
    return _Payment(
        amount=int_at(obj, "amount_total"),
        currency=text_at(obj, "currency"),
        customer=_customer(obj, ("customer_details", "email"), ("customer_email",)),
        description="",
        failure="",
        dashboard_path=_path("payments", intent),
        thread_key=_thread(text_at(obj, "invoice"), intent),
    )


def _invoice(obj: Payload) -> _Payment:
    paid = int_at(obj, "amount_paid")
    attempts = int_at(obj, "attempt_count")
    number, description = text_at(obj, "number"), text_at(obj, "description")
    return _Payment(
        amount=paid if paid else int_at(obj, "amount_due"),
        currency=text_at(obj, "currency"),
        customer=_customer(obj, ("customer_email",), ("customer_name",)),
        description=" ".join(present([f"Invoice {number}" if number else "", description])),
        failure=f"Attempt {attempts}" if attempts and text_at(obj, "status") == "open" else "",
        dashboard_path=_path("invoices", text_at(obj, "id")),
        thread_key=_thread(text_at(obj, "id"), ""),
    )


def _customer(obj: Payload, *paths: tuple[str, ...]) -> str:
    """The first of the given email/name fields, else the customer id."""
    return first_text(obj, [*paths, ("customer",)])


_SUCCEEDED = Outcome(":moneybag:", "Payment succeeded", "white_check_mark", True)
_FAILED = Outcome(":x:", "Payment failed", "x", True)

_BY_TYPE: dict[str, tuple[Callable[[Payload], _Payment], Outcome]] = {
    "charge.succeeded": (_charge, _SUCCEEDED),
    "charge.failed": (_charge, _FAILED),
    "payment_intent.succeeded": (_payment_intent, _SUCCEEDED),
    "payment_intent.payment_failed": (_payment_intent, _FAILED),
    "checkout.session.completed": (
        _checkout_session,
        replace(_SUCCEEDED, verb="Checkout completed"),
    ),
    "invoice.paid": (_invoice, replace(_SUCCEEDED, emoji=":receipt:", verb="Invoice paid")),
    "invoice.payment_failed": (_invoice, replace(_FAILED, verb="Invoice payment failed")),
}
