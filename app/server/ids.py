"""Ids of sessions, jobs and the folders under them."""

from __future__ import annotations

import secrets


def new_id() -> str:
    """192 random bits, URL-safe: not guessable, not enumerable."""
    return secrets.token_urlsafe(24)
