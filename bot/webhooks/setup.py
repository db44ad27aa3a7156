"""How to point each sender at a hook: the instructions `/hook create` replies with."""

from __future__ import annotations


def setup_instructions(preset: str, url: str, secret: str | None) -> str:
    """Step-by-step set-up at the sender for ``preset``, mentioning the secret if any."""
    secret_text = f"`{secret}`" if secret else "(none)"
    steps = {
        "github": (
            "*At GitHub:* repository (or organization) → Settings → Webhooks → Add webhook.\n"
            f"• Payload URL: `{url}`\n• Content type: `application/json`\n• Secret: {secret_text}\n"
            "• Events: “Let me select individual events” → Pushes, Pull requests, Issues, "
            "Releases, Workflow runs, Check runs."
        ),
        "gitlab": (
            "*At GitLab:* project → Settings → Webhooks → Add new webhook.\n"
            f"• URL: `{url}`\n• Secret token: {secret_text}\n"
            "• Triggers: Push events, Merge request events, Pipeline events."
        ),
        "alertmanager": (
            "*In alertmanager.yml:*\n```receivers:\n- name: slack-bot\n  webhook_configs:\n"
            f"  - url: {url}\n    send_resolved: true\n"
            + (
                f"    http_config:\n      authorization:\n        credentials: {secret}\n"
                if secret
                else ""
            )
            + "```"
        ),
        "grafana": (
            "*In Grafana:* Alerting → Contact points → Add contact point → Integration: Webhook.\n"
            f"• URL: `{url}`\n"
            + (
                "• Optional settings → Authorization header: scheme `Bearer`, credentials "
                f"{secret_text} (or HMAC signature with the same secret)."
                if secret
                else ""
            )
        ),
        "sentry": (
            "*In Sentry:* Settings → Developer Settings → Custom Integration (internal).\n"
            f"• Webhook URL: `{url}`\n• Alert Rule Action: on; then add it as an alert rule action.\n"
            "• Copy its *Client Secret* here so signatures are checked: "
            "`/hook set NAME secret=CLIENT_SECRET`"
        ),
        "stripe": (
            "*In Stripe:* Developers → Webhooks → Add endpoint.\n"
            f"• Endpoint URL: `{url}`\n• Events: e.g. `charge.succeeded`, "
            "`checkout.session.completed`, `invoice.payment_failed`.\n"
            "• Copy its signing secret (`whsec_…`) here: `/hook set NAME secret=whsec_…`"
        ),
    }
    generic = (
        "*From anything that can POST* (JSON, form or text):\n"
        f"```curl -X POST {url} -H 'Content-Type: application/json' "
        + (f"-H 'Authorization: Bearer {secret}' " if secret else "")
        + '-d \'{"text": "hello"}\'```'
        + (
            "\nOr sign the body instead: header `X-Signature-256: sha256=<hex HMAC-SHA256 of the "
            "body with the secret>`."
            if secret
            else ""
        )
    )
    return steps.get(preset, generic)
