"""A Slack chat-ops bot: webhooks in, scheduled checks out, one durable outbox to Slack."""
