"""What the protocol parsers share: the ParseError, the frame helpers (``frames``), the JSON
header reader and validation (``json_header``) and the restricted unpickler for network frames
(``safe_pickle``, with its allow-list in ``pickle_globals``)."""
