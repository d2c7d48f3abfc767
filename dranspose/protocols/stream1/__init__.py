"""The stream1 protocol: its packets (``packets``) and its parser (``parser``)."""
