"""Credential extraction and verification, one module per credential kind."""

from .extract import AuthorizationExtractor, HeaderKeyExtractor

__all__ = ["AuthorizationExtractor", "HeaderKeyExtractor"]
