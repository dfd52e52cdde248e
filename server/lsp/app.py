"""The factory of the language server: a `RemapServer` with every feature registered."""

from __future__ import annotations

from .features import (
    actions,
    completion,
    configuration,
    diagnostics,
    folding,
    formatting,
    hover,
    lens,
    navigation,
    overview,
    symbols,
    training,
)
from .server import RemapServer


def build_server() -> RemapServer:
    server = RemapServer()
    for feature in (configuration, diagnostics, hover, completion, formatting, folding, symbols, navigation, actions,
                    lens, training, overview):
        feature.register(server)
    return server
