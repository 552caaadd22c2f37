"""Accounts use Django's own User; the live board's saved choices moved to live.models."""
