"""What the protocol parsers share: the ParseError, the JSON header reader and the
restricted unpickler for network frames."""
