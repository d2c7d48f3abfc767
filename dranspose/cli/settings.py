"""The environment the ``dranspose`` command reads, in one place.

Deployments configure the components through variables (the image sets ``DRANSPOSE_HOST``, the
Helm chart ``REDIS_URL``, ``LOG_LEVEL`` and ``DRANSPOSE_TOKEN``, a payload image
``BUILD_META_FILE``). :class:`Settings` reads them once, when the command starts; the command
line hands what they say to the components, apps and tools it builds, which read no environment
themselves. A command-line option, where there is one, wins over its variable.

Variables named ``DRANSPOSE_*`` are fields with that prefix; the others keep the names users
already set. An empty variable counts as unset.
"""

from __future__ import annotations

import os
import sys
from typing import Optional

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dranspose.core.protocol import BUILD_META_ENV, BuildGitMeta, BuildMetaError
from dranspose.http.auth import TRUE_WORDS, AccessPolicy, bearer_headers
from dranspose.io.build_meta import read_build_meta
from dranspose.runtime.component import CONTROLLER_GRACE_SECONDS

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
ORIGINAL_BUILD_META_FILE = "/etc/build_git_meta.json"
"""Where the original looked for the build provenance when ``$BUILD_META_FILE`` is not set."""


class Settings(BaseSettings):
    """Everything the environment configures; ``Settings()`` reads it."""

    model_config = SettingsConfigDict(
        env_prefix="DRANSPOSE_", env_ignore_empty=True, extra="ignore", populate_by_name=True
    )

    token: Optional[SecretStr] = None
    """``$DRANSPOSE_TOKEN``: the bearer token of the HTTP APIs (docs/security.md)."""
    token_reads: bool = False
    """``$DRANSPOSE_TOKEN_READS``: 1 (true, yes, on) asks for the token on reads too."""
    host: str = "127.0.0.1"
    """``$DRANSPOSE_HOST``: where the controller's and reducer's APIs listen by default; loopback
    on a laptop, the image sets 0.0.0.0 (loopback would be unreachable in a container)."""
    redis_url: str = Field(
        DEFAULT_REDIS_URL, validation_alias=AliasChoices("REDIS_URL", "SERVICE_REDIS_DSN")
    )
    """``$REDIS_URL``: the Redis of the services' coordination (``--redis-url``); the original's
    ``$SERVICE_REDIS_DSN`` too (``REDIS_URL`` wins when both are set)."""
    log_level: Optional[str] = Field(None, validation_alias="LOG_LEVEL")
    """``$LOG_LEVEL``: DEBUG, INFO, ... (default INFO)."""
    log_format: Optional[str] = Field(None, validation_alias="LOG_FORMAT")
    """``$LOG_FORMAT``: structured or plain (default: plain for offline tools)."""
    controller_grace: float = Field(CONTROLLER_GRACE_SECONDS, gt=0)
    """``$DRANSPOSE_CONTROLLER_GRACE``: seconds an ingester, worker or reducer keeps its part of
    a running scan while no controller holds the lock (``--controller-grace``)."""
    build_meta_file: Optional[str] = Field(None, validation_alias=BUILD_META_ENV)
    """``$BUILD_META_FILE``: the payload's build provenance (``state.mapreduce_version``)."""

    # The original's settings, read from the environment by field name. They stay raw text here:
    # a command parses only those it uses (dranspose/cli/original.py), so a bad WORKER_TAGS says
    # so in the worker and does not stop a controller started with the same environment.
    worker_class: Optional[str] = Field(None, validation_alias="WORKER_CLASS")
    worker_name: Optional[str] = Field(None, validation_alias="WORKER_NAME")
    worker_tags: Optional[str] = Field(None, validation_alias="WORKER_TAGS")
    """a JSON list, as the original reads it (``["generic", "fast"]``)"""
    reducer_class: Optional[str] = Field(None, validation_alias="REDUCER_CLASS")
    reducer_url: Optional[str] = Field(None, validation_alias="REDUCER_URL")
    """``tcp://HOST:PORT``: the reducer's data port and the address workers reach it at"""
    ingester_streams: Optional[str] = Field(None, validation_alias="INGESTER_STREAMS")
    ingester_name: Optional[str] = Field(None, validation_alias="INGESTER_NAME")
    ingester_url: Optional[str] = Field(None, validation_alias="INGESTER_URL")
    upstream_url: Optional[str] = Field(None, validation_alias="UPSTREAM_URL")
    dump_path: Optional[str] = Field(None, validation_alias="DUMP_PATH")

    @field_validator("token_reads", mode="before")
    @classmethod
    def _yes(cls, value: object) -> object:
        """Only the words that mean yes do; any other value (``no``, ``maybe``) means no."""
        if isinstance(value, str):
            return value.strip().lower() in TRUE_WORDS
        return value

    def access(
        self, token: Optional[str] = None, protect_reads: Optional[bool] = None
    ) -> AccessPolicy:
        """The HTTP APIs' policy; ``--token`` and ``--protect-reads`` win over the variables."""
        if token is None and self.token is not None:
            token = self.token.get_secret_value()
        reads = self.token_reads if protect_reads is None else protect_reads
        return AccessPolicy.create(token, protect_reads=reads)

    def build_meta(self, fallback: str = ORIGINAL_BUILD_META_FILE) -> Optional[BuildGitMeta]:
        """The provenance file's content; an unreadable file is an error (``BuildMetaError``).

        Without ``$BUILD_META_FILE``, the original's default file ``fallback`` is read when it
        exists (payload images built for the original put their provenance there); as in the
        original, a bad file at that default place is reported and skipped, not fatal.
        """
        if self.build_meta_file:
            return read_build_meta({BUILD_META_ENV: self.build_meta_file})
        if not os.path.exists(fallback):
            return None
        try:
            return read_build_meta({BUILD_META_ENV: fallback})
        except BuildMetaError as exc:
            print(f"dranspose: provenance not used: {exc}", file=sys.stderr)
            return None

    def client_headers(self) -> dict[str, str]:
        """What our own HTTP clients (bench scripts) send: the token, when there is one."""
        return bearer_headers(self.token.get_secret_value() if self.token is not None else None)
