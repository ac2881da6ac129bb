"""Placeholder: commands registered by this module are being built."""
