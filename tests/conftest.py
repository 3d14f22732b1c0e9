"""Shared fixtures. Each part of the project adds its fixtures here, smallest first."""

from __future__ import annotations
