"""Development tools: fakes of the services the bot talks to, for tests and local mode."""
