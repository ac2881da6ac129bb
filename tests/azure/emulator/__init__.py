"""Loopback ARM emulator the apply tests and benchmark drive through the real Azure SDK."""

from .server import API_VERSION, ArmEmulator, Fault, Interpose

__all__ = ["API_VERSION", "ArmEmulator", "Fault", "Interpose"]
