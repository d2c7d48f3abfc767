"""The import paths and names payloads already use are a public contract."""

import importlib

import pytest

PUBLIC = {
    "dranspose.core.event": ["StreamData", "EventData", "ResultData", "InternalWorkerMessage"],
    "dranspose.core.protocol": [
        "StreamName",
        "EventNumber",
        "WorkerName",
        "ParameterName",
        "WorkParameter",
    ],
    "dranspose.core.parameters": [
        "IntParameter",
        "FloatParameter",
        "StrParameter",
        "BoolParameter",
        "BinaryParameter",
    ],
    "dranspose.tools.replay": ["replay"],
    "dranspose.protocols.stream1.packets": [
        "Stream1Start",
        "Stream1Data",
        "Stream1End",
        "Stream1Packet",
    ],
    "dranspose.protocols.contrast.packets": [
        "ContrastStarted",
        "ContrastRunning",
        "ContrastFinished",
        "ContrastHeartbeat",
        "ContrastPacket",
    ],
    "dranspose.protocols.xspress3.packets": [
        "XspressStart",
        "XspressImage",
        "XspressEnd",
        "XspressPacket",
    ],
    "dranspose.protocols.sardana.packets": [
        "SardanaDataDescription",
        "SardanaRecordData",
        "SardanaRecordEnd",
        "SardanaPacket",
    ],
    "dranspose.protocols.pcap.packets": ["PCAPStart", "PCAPData", "PCAPEnd", "PCAPPacket"],
    "dranspose.protocols.positioncap.packets": [
        "PositionCapField",
        "PositionCapStart",
        "PositionCapValues",
        "PositionCapEnd",
        "PositionCapPacket",
    ],
    "dranspose.protocols.lecroy.packets": [
        "LecroyPrepare",
        "LecroySeqStart",
        "LecroySeqEnd",
        "LecroyEnd",
        "LecroyBase",
        "LecroyParsed",
        "LECROY_TYPE",
    ],
    "dranspose.protocols.albaem.packets": [
        "AlbaemStart",
        "AlbaemData",
        "AlbaemEnd",
        "AlbaemPacket",
    ],
    "dranspose.protocols.eiger_legacy.packets": [
        "EigerLegacyHeader",
        "EigerLegacyImage",
        "EigerLegacyEnd",
        "EigerLegacyPacket",
    ],
    "dranspose.protocols.stream1.parser": ["parse"],
    "dranspose.protocols.contrast.parser": ["parse"],
    "dranspose.protocols.xspress3.parser": ["parse"],
    "dranspose.protocols.sardana.parser": ["parse"],
    "dranspose.protocols.pcap.parser": ["parse"],
    "dranspose.protocols.positioncap.parser": ["PositioncapParser"],
    "dranspose.protocols.lecroy.parser": ["parse"],
    "dranspose.protocols.albaem.parser": ["parse"],
    "dranspose.protocols.eiger_legacy.parser": ["parse"],
}


@pytest.mark.parametrize("module, names", PUBLIC.items())
def test_public_names_import(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lacks {missing}"


@pytest.mark.parametrize("module", [m for m in PUBLIC if m.startswith("dranspose.data.")])
def test_packet_names_validate_like_earlier_releases(module):
    mod = importlib.import_module(module)
    packets = [n for n in PUBLIC[module] if n.endswith("Packet")]
    for name in packets:
        adapter = getattr(mod, name)
        assert hasattr(adapter, "validate_json") and hasattr(adapter, "validate_python"), name
