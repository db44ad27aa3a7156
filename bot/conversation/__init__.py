"""Plain-language conversations with the bot."""
