"""bot.devtools: development tools shipped for `sopbot demo` and the tests (see docs/architecture.md)."""
