"""The pcap protocol: its packets (``packets``) and its parser (``parser``)."""
