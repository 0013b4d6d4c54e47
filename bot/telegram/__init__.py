"""bot.telegram: the Telegram runtime (see docs/architecture.md)."""
