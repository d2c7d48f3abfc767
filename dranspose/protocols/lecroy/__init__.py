"""The lecroy protocol: its packets (``packets``) and its parser (``parser``)."""
