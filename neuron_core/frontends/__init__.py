"""Frontends: native model formats -> core IR."""
