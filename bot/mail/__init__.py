"""Email: reading mailboxes over IMAP and turning messages into Slack posts.

message.py  parse_message / summary_from_headers / routing_context (pure, never raises)
headers.py  header values, charsets and addresses as they come in real mail
text.py     HTML to text, quoted replies and signatures trimmed
watch.py    what a run does: baseline, new UIDs, UIDVALIDITY changes, floods (pure)
imap.py     a read-only IMAP reader over a socket to an address the policy judged
poll.py     one run: connect, examine, decide, fetch, parse, log out
"""
