"""The albaem protocol: its packets (``packets``) and its parser (``parser``)."""
