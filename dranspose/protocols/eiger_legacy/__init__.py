"""The eiger_legacy protocol: its packets (``packets``) and its parser (``parser``)."""
