"""The contrast protocol: its packets (``packets``) and its parser (``parser``)."""
