"""Actions: named outgoing HTTP requests that hooks, triggers and people run.

* `spec`: ``/action add`` text → a typed `ActionSpec`, and how a request is shown;
* `service`: `ActionService`, the one place actions are validated, saved, changed,
  audited and run by hand;
* `runs`: a run of an action becomes a stored row (its body rendered in the user-code
  workers) before anything is sent: `ActionRuns`;
* `sender`: `ActionSender`, the worker that sends stored runs, retries, and says the
  outcome in the thread of what caused the run;
* `slash`: the ``/action`` slash command, `form`: its modal; `buttons`: action buttons
  under hook and trigger messages.

Hooks (`bot.webhooks.processor`) and triggers (`bot.triggers.acting`) run actions, so
this package knows neither; a button's click is handled in `bot.conversation.action_clicks`.
"""
