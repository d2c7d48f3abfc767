"""dranspose.io.build_meta: the payload's provenance file, read where the command line or
``replay()`` says; the model and error stay plain data in dranspose.core.protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dranspose.core.protocol import BUILD_META_ENV, BuildGitMeta, BuildMetaError
from dranspose.io.build_meta import read_build_meta


def test_unset_is_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BUILD_META_ENV, raising=False)
    assert read_build_meta() is None
    assert read_build_meta({}) is None
    assert read_build_meta({BUILD_META_ENV: ""}) is None


def test_a_file_named_in_the_mapping_or_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "meta.json"
    path.write_text(json.dumps({"commit_hash": "abc", "branch_name": "main", "extra": 1}))
    expected = BuildGitMeta(commit_hash="abc", branch_name="main", extra=1)  # type: ignore[call-arg]
    assert read_build_meta({BUILD_META_ENV: str(path)}) == expected
    monkeypatch.setenv(BUILD_META_ENV, str(path))
    assert read_build_meta() == expected


def test_a_missing_or_malformed_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    with pytest.raises(BuildMetaError, match="cannot open"):
        read_build_meta({BUILD_META_ENV: str(missing)})
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(
        BuildMetaError, match=f"{BUILD_META_ENV}=.*bad.json.*expected a JSON object"
    ):
        read_build_meta({BUILD_META_ENV: str(bad)})
