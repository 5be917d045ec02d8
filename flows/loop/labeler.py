"""The labeler port's default: the real Label Studio adapter, built from `[labelstudio]`.

Why here: the engine needs an adapter when its caller gave no factory (the flows, the
CLI), and the token's origin (the environment, else the local server's token file) is a
rule of the loop, not of a driver. The adapter is an annotating one only when someone
answers through it (the demo's simulated annotator); production gets the production API.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlparse

if TYPE_CHECKING:
    from flows.config import Config


def labelstudio_token(cfg: Config) -> tuple[str, str]:
    """(token, where it came from): the environment, else, for a server on this machine, the
    token file of the local server `scripts/labelstudio.sh` started.

    That fallback lets a person who ran `make labelstudio-up` use the CLI without exporting
    anything; only for a server on this machine, and the adapter names that file when the
    server refuses the token. The token is never printed.
    """
    from flows.services import local_labelstudio_token, local_token_file

    url = cfg.labelstudio.url
    if cfg.labelstudio.token:
        name = (
            "LOOPWRIGHT_LABELSTUDIO_TOKEN"
            if os.environ.get("LOOPWRIGHT_LABELSTUDIO_TOKEN")
            else "LABEL_STUDIO_API_KEY"
        )
        return cfg.labelstudio.token.reveal(), f"the environment ({name})"
    if urlparse(url).hostname in {"127.0.0.1", "localhost"}:
        token = local_labelstudio_token()
        if token:
            return token, (
                f"{local_token_file()}, the token of the local server scripts/labelstudio.sh "
                "started (LOOPWRIGHT_LABELSTUDIO_TOKEN is not set)"
            )
    raise RuntimeError(
        f"no Label Studio token for {url}: set LOOPWRIGHT_LABELSTUDIO_TOKEN to an admin's token "
        "of that server (`scripts/labelstudio.sh token` prints the one of the local server)"
    )


def labelstudio_adapter(cfg: Config, annotating: bool = False):
    """The Label Studio adapter of `[labelstudio]` (`AnnotatingAdapter` when `annotating`)."""
    if annotating:
        from curation.labelstudio_annotate import AnnotatingAdapter as Adapter
    else:
        from curation.labelstudio import LabelStudioAdapter as Adapter

    token, source = labelstudio_token(cfg)
    return Adapter(
        cfg.labelstudio.url,
        token,
        timeout=cfg.labelstudio.timeout_s,
        retries=cfg.labelstudio.retries,
        token_source=source,
    )
