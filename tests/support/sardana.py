"""The bodies a Sardana HTTP recorder posts during one scan."""

from __future__ import annotations

import json

# An "ascan sam_x 0 1 2 0.1" as a Sardana recorder posts it: the body to /v1/data_desc ...
DATA_DESC = (
    b'{"column_desc": [{"name": "point_nb", "label": "#Pt No", "dtype": "int64", "shape": []}, '
    b'{"min_value": 0.0, "max_value": 1.0, "instrument": "", "name": "sam_x", "label": "sam_x", '
    b'"dtype": "float64", "shape": [], "is_reference": true}, '
    b'{"name": "ct01", "label": "ct01", "dtype": "float64", "shape": []}, '
    b'{"name": "ipm_diode", "label": "IPM diode", "dtype": "float64", "shape": []}, '
    b'{"name": "timestamp", "label": "dt", "dtype": "float64", "shape": []}], '
    b'"ref_moveables": ["sam_x"], "estimatedtime": 3.352, "total_scan_intervals": 2, '
    b'"starttime": "Tue Mar  5 10:12:01 2024", "title": "ascan sam_x 0.0 1.0 2 0.1", '
    b'"counters": ["tango://b-v-exp-csdb-0.example.org:10000/expchan/ctctrl01/1", '
    b'"tango://b-v-exp-csdb-0.example.org:10000/expchan/ipmctrl/1"], '
    b'"scanfile": ["scan_1734.h5", "scan_1734.dat"], "scandir": "/data/visitors/2024/p123", '
    b'"serialno": 1734}'
)
# ... to /v1/record_data, one per point ...
RECORDS = [
    b'{"point_nb": 0, "sam_x": 0.0, "ct01": 0.1, "ipm_diode": 1.204e-06, '
    b'"timestamp": 0.4120945930480957}',
    b'{"point_nb": 1, "sam_x": 0.5, "ct01": 0.1, "ipm_diode": 1.198e-06, '
    b'"timestamp": 1.5334928035736084}',
    b'{"point_nb": 2, "sam_x": 1.0, "ct01": 0.1, "ipm_diode": NaN, '
    b'"timestamp": 2.6610476970672607}',
]
# ... and to /v1/record_end.
RECORD_END = b"{}"
RECORD_END_TIMES = b'{"endtime": "Tue Mar  5 10:12:05 2024", "deadtime": 0.271}'


def tagged(body: bytes, kind: str) -> bytes:
    """``body`` with the ``type`` key an ingester adds for the endpoint it came to."""
    return json.dumps({"type": kind, **json.loads(body)}).encode()
