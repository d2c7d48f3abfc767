"""The import paths and names payloads already use are a public contract."""

import importlib

import pytest

# the paths payloads written for the original dranspose import from (the contract) ...
PUBLIC = {
    "dranspose.event": ["StreamData", "EventData", "ResultData", "InternalWorkerMessage"],
    "dranspose.protocol": [
        "StreamName",
        "EventNumber",
        "WorkerName",
        "ParameterName",
        "WorkParameter",
    ],
    "dranspose.parameters": [
        "IntParameter",
        "FloatParameter",
        "StrParameter",
        "BoolParameter",
        "BinaryParameter",
    ],
    "dranspose.replay": ["replay"],
    "dranspose.data.stream1": [
        "Stream1Start",
        "Stream1Data",
        "Stream1End",
        "Stream1Packet",
    ],
    "dranspose.data.contrast": [
        "ContrastStarted",
        "ContrastRunning",
        "ContrastFinished",
        "ContrastHeartbeat",
        "ContrastPacket",
    ],
    "dranspose.data.xspress3": [
        "XspressStart",
        "XspressImage",
        "XspressEnd",
        "XspressPacket",
    ],
    "dranspose.data.sardana": [
        "SardanaDataDescription",
        "SardanaRecordData",
        "SardanaRecordEnd",
        "SardanaPacket",
    ],
    "dranspose.data.pcap": ["PCAPStart", "PCAPData", "PCAPEnd", "PCAPPacket"],
    "dranspose.data.positioncap": [
        "PositionCapField",
        "PositionCapStart",
        "PositionCapValues",
        "PositionCapEnd",
        "PositionCapPacket",
    ],
    "dranspose.data.lecroy": [
        "LecroyPrepare",
        "LecroySeqStart",
        "LecroySeqEnd",
        "LecroyEnd",
        "LecroyBase",
        "LecroyParsed",
        "LECROY_TYPE",
    ],
    "dranspose.data.albaem": [
        "AlbaemStart",
        "AlbaemData",
        "AlbaemEnd",
        "AlbaemPacket",
    ],
    "dranspose.data.eiger_legacy": [
        "EigerLegacyHeader",
        "EigerLegacyImage",
        "EigerLegacyEnd",
        "EigerLegacyPacket",
    ],
    "dranspose.middlewares.stream1": ["parse"],
    "dranspose.middlewares.contrast": ["parse"],
    "dranspose.middlewares.xspress": ["parse"],
    "dranspose.middlewares.sardana": ["parse"],
    "dranspose.middlewares.pcap": ["parse"],
    "dranspose.middlewares.positioncap": ["PositioncapParser"],
    "dranspose.middlewares.lecroy": ["parse"],
    "dranspose.middlewares.albaem": ["parse"],
    "dranspose.middlewares.eiger_legacy": ["parse"],
}

# ... and where each of them lives in this tree: the public module re-exports the same object
HOME = {
    "dranspose.event": "dranspose.core.event",
    "dranspose.protocol": "dranspose.core.protocol",
    "dranspose.parameters": "dranspose.core.parameters",
    "dranspose.replay": "dranspose.tools.replay",
    "dranspose.data.stream1": "dranspose.protocols.stream1.packets",
    "dranspose.middlewares.stream1": "dranspose.protocols.stream1.parser",
    "dranspose.data.contrast": "dranspose.protocols.contrast.packets",
    "dranspose.middlewares.contrast": "dranspose.protocols.contrast.parser",
    "dranspose.data.xspress3": "dranspose.protocols.xspress3.packets",
    "dranspose.middlewares.xspress": "dranspose.protocols.xspress3.parser",
    "dranspose.data.sardana": "dranspose.protocols.sardana.packets",
    "dranspose.middlewares.sardana": "dranspose.protocols.sardana.parser",
    "dranspose.data.pcap": "dranspose.protocols.pcap.packets",
    "dranspose.middlewares.pcap": "dranspose.protocols.pcap.parser",
    "dranspose.data.positioncap": "dranspose.protocols.positioncap.packets",
    "dranspose.middlewares.positioncap": "dranspose.protocols.positioncap.parser",
    "dranspose.data.lecroy": "dranspose.protocols.lecroy.packets",
    "dranspose.middlewares.lecroy": "dranspose.protocols.lecroy.parser",
    "dranspose.data.albaem": "dranspose.protocols.albaem.packets",
    "dranspose.middlewares.albaem": "dranspose.protocols.albaem.parser",
    "dranspose.data.eiger_legacy": "dranspose.protocols.eiger_legacy.packets",
    "dranspose.middlewares.eiger_legacy": "dranspose.protocols.eiger_legacy.parser",
}


@pytest.mark.parametrize("module, names", PUBLIC.items())
def test_public_names_import(module, names):
    mod = importlib.import_module(module)
    missing = [n for n in names if not hasattr(mod, n)]
    assert not missing, f"{module} lacks {missing}"


@pytest.mark.parametrize("module, names", PUBLIC.items())
def test_public_names_are_the_tree_s_own_objects(module, names):
    """A thin re-export, not a copy: isinstance checks and pickles agree across both paths."""
    public, home = importlib.import_module(module), importlib.import_module(HOME[module])
    differ = [n for n in names if getattr(public, n) is not getattr(home, n)]
    assert not differ, f"{module} and {HOME[module]} differ in {differ}"


@pytest.mark.parametrize("module", [m for m in PUBLIC if m.startswith("dranspose.data.")])
def test_packet_names_validate_like_earlier_releases(module):
    mod = importlib.import_module(module)
    packets = [n for n in PUBLIC[module] if n.endswith("Packet")]
    for name in packets:
        adapter = getattr(mod, name)
        assert hasattr(adapter, "validate_json") and hasattr(adapter, "validate_python"), name
