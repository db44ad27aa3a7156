"""Email: reading mailboxes over IMAP and turning messages into Slack posts."""
