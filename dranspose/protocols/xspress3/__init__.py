"""The xspress3 protocol: its packets (``packets``) and its parser (``parser``)."""
