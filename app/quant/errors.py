"""Errors of the quantization analysis, worded for the person who supplied the model or data."""

from __future__ import annotations


class QuantError(Exception):
    """Bad input (model, calibration data, options) or a failure a person can act on."""


class QuantCancelled(QuantError):
    """The caller's cancellation check fired; raised between batches, after workers stopped."""
