"""A recorded PandA position-capture session (the bytes of its TCP data port)."""

from __future__ import annotations

# What a PandA (recent firmware, hardware timestamps) sends on port 8889 after the request
# "ASCII SCALED": the reply, the header block, four samples, the completion line.
REPLY = b"OK\n"
HEADER = (
    b"arm_time: 2024-03-05T10:12:03.257841574Z\n"
    b"start_time: 2024-03-05T10:12:03.258875498Z\n"
    b"hw_time_offset_ns: 100555\n"
    b"missed: 0\n"
    b"process: Scaled\n"
    b"format: ASCII\n"
    b"fields:\n"
    b" PCAP.TS_TRIG double Value scale: 8e-09 offset: 0 units: s\n"
    b" INENC1.VAL double Mean scale: 0.0005 offset: -12.5 units: mm\n"
    b" INENC1.VAL double Min scale: 0.0005 offset: -12.5 units: mm\n"
    b" INENC1.VAL double Max scale: 0.0005 offset: -12.5 units: mm\n"
    b" COUNTER1.OUT double Value scale: 1 offset: 0 units: \n"
    b" PCAP.BITS2 uint32 Value\n"
    b"\n"
)
LINES = [
    b" 0.001000048 -3.74975 -3.75 -3.7495 1 33554433\n",
    b" 0.011000048 -3.24985 -3.2505 -3.249 2 33554433\n",
    b" 0.021000048 -2.75015 -2.751 -2.7495 3 301989889\n",
    b" 0.031000048 -2.2501 -2.2505 -2.2495 4 301989889\n",
]
END = b"END 4 Ok\n"
SESSION = REPLY + HEADER + b"".join(LINES) + END

KEYS = [
    "PCAP.TS_TRIG.Value",
    "INENC1.VAL.Mean",
    "INENC1.VAL.Min",
    "INENC1.VAL.Max",
    "COUNTER1.OUT.Value",
    "PCAP.BITS2.Value",
]

# Older firmware: no start_time, millisecond arm_time, unscaled integers.
OLD_HEADER = (
    b"arm_time: 2023-12-19T07:51:12.754Z\n"
    b"missed: 3\n"
    b"process: Unscaled\n"
    b"format: ASCII\n"
    b"fields:\n"
    b" PCAP.TS_TRIG int64 Value\n"
    b" INENC1.VAL int32 Value\n"
    b" PCAP.BITS0 uint32 Value\n"
    b"\n"
)
