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

from typing import Optional

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from dranspose.core.protocol import BUILD_META_ENV, BuildGitMeta, read_build_meta
from dranspose.http.auth import TRUE_WORDS, AccessPolicy, bearer_headers

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"


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
    redis_url: str = Field(DEFAULT_REDIS_URL, validation_alias="REDIS_URL")
    """``$REDIS_URL``: the Redis of the services' coordination (``--redis-url``)."""
    log_level: Optional[str] = Field(None, validation_alias="LOG_LEVEL")
    """``$LOG_LEVEL``: DEBUG, INFO, ... (default INFO)."""
    log_format: Optional[str] = Field(None, validation_alias="LOG_FORMAT")
    """``$LOG_FORMAT``: structured or plain (default: plain for offline tools)."""
    build_meta_file: Optional[str] = Field(None, validation_alias=BUILD_META_ENV)
    """``$BUILD_META_FILE``: the payload's build provenance (``state.mapreduce_version``)."""

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

    def build_meta(self) -> Optional[BuildGitMeta]:
        """The provenance file's content; an unreadable file is an error (``BuildMetaError``)."""
        if not self.build_meta_file:
            return None
        return read_build_meta({BUILD_META_ENV: self.build_meta_file})

    def client_headers(self) -> dict[str, str]:
        """What our own HTTP clients (bench scripts) send: the token, when there is one."""
        return bearer_headers(self.token.get_secret_value() if self.token is not None else None)
