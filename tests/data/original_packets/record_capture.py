"""Record how the original dranspose 0.2.0 writes and reads an ingester dump with its CBOR hooks.

Run once in a venv holding the original (commit 629dbfb, cbor2 5.x), from this folder:

    python record_capture.py

It writes ``original-dump.cbors`` with ``cbor2.dump(msg, f, default=message_encoder)`` and
``original-dump.json``: what the original's ``message_tag_hook`` reads back from that file, and
from ``ours-dump.cbors`` (written by this project's ``message_encoder``, if present), so the
project's tests (tests/test_capture_tags.py) compare against the original without importing it.
"""

import json
from datetime import datetime, timezone
from pathlib import Path

import cbor2

from dranspose.event import InternalWorkerMessage, StreamData, message_encoder, message_tag_hook

HERE = Path(__file__).parent


def messages() -> list:
    base = datetime(2024, 5, 17, 9, 30, 12, 250000, tzinfo=timezone.utc)
    out = []
    for n in range(1, 4):
        out.append(
            InternalWorkerMessage(
                event_number=n,
                streams={
                    "eiger": StreamData(typ="STINS", frames=[b'{"htype":"image"}', bytes([n]) * 5]),
                    "orca": StreamData(typ="STINS", frames=[b"%d" % n]),
                },
                created_at=base.replace(second=12 + n),
            )
        )
    return out


def read(path: Path) -> list:
    out = []
    with open(path, "rb") as f:
        while f.peek(1):
            msg = cbor2.load(f, tag_hook=message_tag_hook)
            out.append(
                {
                    "event_number": msg.event_number,
                    "streams": {
                        k: {"typ": v.typ, "frames": [fr.hex() for fr in v.frames]}
                        for k, v in msg.streams.items()
                    },
                    "created_at": msg.created_at.isoformat(),
                }
            )
    return out


def main() -> None:
    with open(HERE / "original-dump.cbors", "wb") as f:
        for msg in messages():
            cbor2.dump(msg, f, default=message_encoder)
    record = {"original_reads_its_own": read(HERE / "original-dump.cbors")}
    if (HERE / "ours-dump.cbors").exists():
        record["original_reads_ours"] = read(HERE / "ours-dump.cbors")
    (HERE / "original-dump.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
