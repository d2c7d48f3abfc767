"""The positioncap protocol: its packets (``packets``) and its parser (``parser``)."""
