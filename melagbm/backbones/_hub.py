"""Reaching the Hugging Face hub without hanging: the cache when the hub cannot be reached.

huggingface_hub retries an unreachable host for about 25 s per file, and a model asks for
several files. Before a hub load, melagbm checks in 3 s whether the hub answers; when it does
not, the load runs in offline mode from the cache (where the files are), or fails at once
naming what to download (where they are not).
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlparse

from ..exceptions import BackboneUnavailableError

__all__ = ["hub_access"]

_PROBE_SECONDS = 3.0


#: With one of these set, connections go through a proxy: a direct probe would say nothing.
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def _hub_reachable() -> bool:
    from huggingface_hub import constants

    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True  # huggingface_hub goes through the proxy; let it try
    url = urlparse(constants.ENDPOINT)
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((url.hostname, port), timeout=_PROBE_SECONDS):
            return True
    except OSError:
        return False


def _cached(repo: str, files: tuple[str, ...]) -> bool:
    """One of ``files`` (alternatives, e.g. safetensors or bin weights) is in the hub cache."""
    from huggingface_hub import try_to_load_from_cache

    return any(isinstance(try_to_load_from_cache(repo, name), str) for name in files)


@contextmanager
def hub_access(repo: str, needed: list[tuple[str, ...]], advice: str) -> Iterator[None]:
    """Run a hub load of ``repo``: online when the hub answers, else offline from the cache.

    Parameters
    ----------
    repo : str
        The hub repository (``org/name``).
    needed : list of tuple of str
        The files the load reads; each entry lists alternatives (any one will do).
    advice : str
        What to download and where to put it, for the error when the hub is out of reach and the cache
        lacks a file.

    Raises
    ------
    BackboneUnavailableError
        When the hub cannot be reached and the cache lacks a needed file.
    """
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE or _hub_reachable():  # (is_offline_mode() is new in huggingface_hub 1.2)
        yield
        return
    missing = [" or ".join(files) for files in needed if not _cached(repo, files)]
    if missing:
        raise BackboneUnavailableError(
            f"The Hugging Face hub ({constants.ENDPOINT}) cannot be reached and its cache "
            f"({constants.HF_HUB_CACHE}) lacks {', '.join(missing)} of {repo}. {advice}"
        )
    previous, env = constants.HF_HUB_OFFLINE, os.environ.get("HF_HUB_OFFLINE")
    constants.HF_HUB_OFFLINE, os.environ["HF_HUB_OFFLINE"] = True, "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = previous
        if env is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        else:
            os.environ["HF_HUB_OFFLINE"] = env
