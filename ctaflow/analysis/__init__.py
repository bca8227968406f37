"""Science as pure functions and pydantic result schemas (no store, no files)."""
