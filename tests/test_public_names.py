"""The import paths and names payloads already use are a public contract."""

import importlib

import pytest

PUBLIC = {
    "dranspose.event": ["StreamData", "EventData", "ResultData", "InternalWorkerMessage"],
    "dranspose.protocol": ["StreamName", "EventNumber", "WorkerName", "ParameterName",
                           "WorkParameter"],
    "dranspose.parameters": ["IntParameter", "FloatParameter", "StrParameter", "BoolParameter",
                             "BinaryParameter"],
    "dranspose.replay": ["replay"],
    "dranspose.data.stream1": ["Stream1Start", "Stream1Data", "Stream1End", "Stream1Packet"],
    "dranspose.data.contrast": ["ContrastStarted", "ContrastRunning", "ContrastFinished",
                                "ContrastHeartbeat", "ContrastPacket"],
    "dranspose.data.xspress3": ["XspressStart", "XspressImage", "XspressEnd", "XspressPacket"],
    "dranspose.data.sardana": ["SardanaDataDescription", "SardanaRecordData",
                               "SardanaRecordEnd", "SardanaPacket"],
    "dranspose.data.pcap": ["PCAPStart", "PCAPData", "PCAPEnd", "PCAPPacket"],
    "dranspose.data.positioncap": ["PositionCapField", "PositionCapStart", "PositionCapValues",
                                   "PositionCapEnd", "PositionCapPacket"],
    "dranspose.data.lecroy": ["LecroyPrepare", "LecroySeqStart", "LecroySeqEnd", "LecroyEnd",
                              "LecroyBase", "LecroyParsed", "LECROY_TYPE"],
    "dranspose.data.albaem": ["AlbaemStart", "AlbaemData", "AlbaemEnd", "AlbaemPacket"],
    "dranspose.data.eiger_legacy": ["EigerLegacyHeader", "EigerLegacyImage", "EigerLegacyEnd",
                                    "EigerLegacyPacket"],
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
