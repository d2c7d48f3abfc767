"""Payload classes used by the runtime tests (imported as ``tests.payloads.<module>:<Class>``)."""
