"""The payload's build provenance, read from the file ``$BUILD_META_FILE`` names.

The model (:class:`~dranspose.core.protocol.BuildGitMeta`), the variable's name and the error
are plain data in :mod:`dranspose.core.protocol`; opening the file and looking at the environment
is I/O, so it lives here. The command line reads the variable once into its settings and passes
the path on (``read_build_meta({BUILD_META_ENV: path})``); ``replay()``, which payload test
suites call without a command line, reads the process environment itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Optional

from pydantic import ValidationError

from dranspose.core.protocol import BUILD_META_ENV, BuildGitMeta, BuildMetaError


def read_build_meta(environ: Optional[Mapping[str, str]] = None) -> Optional[BuildGitMeta]:
    """Read the provenance file named by ``$BUILD_META_FILE``; ``None`` when it is not set.

    A set variable pointing at a missing or malformed file is an error, not a silent ``None``:
    results written without their provenance cannot be trusted later.
    """
    env = os.environ if environ is None else environ
    path = env.get(BUILD_META_ENV)
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            raw = json.load(fh)
        return BuildGitMeta.model_validate(raw)
    except OSError as exc:
        raise BuildMetaError(f"{BUILD_META_ENV}={path!r}: cannot open ({exc.strerror})") from exc
    except (json.JSONDecodeError, ValidationError) as exc:
        raise BuildMetaError(
            f"{BUILD_META_ENV}={path!r}: expected a JSON object with commit_hash, branch_name, "
            f"timestamp, repository_url ({exc})"
        ) from exc
