"""The sardana protocol: its packets (``packets``) and its parser (``parser``)."""
