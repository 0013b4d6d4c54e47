"""bot.core: the domain, no Telegram import (see docs/architecture.md)."""
