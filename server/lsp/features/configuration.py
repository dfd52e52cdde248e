"""Settings from the initialization options, then from `workspace/configuration` when they change."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from lsprotocol import types

if TYPE_CHECKING:
    from ..server import RemapServer

SECTION = "remap"


def register(server: RemapServer) -> None:
    @server.feature(types.INITIALIZE)
    def initialize(ls: RemapServer, params: types.InitializeParams) -> None:
        ls.client_log.attach(asyncio.get_running_loop())
        ls.client_info = params.client_info
        ls.apply_settings(params.initialization_options)
        ls.neighbours.warm_up()  # POT's first import takes about a second: not in the first hover

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    async def did_change_configuration(ls: RemapServer, params: types.DidChangeConfigurationParams) -> None:
        workspace = ls.client_capabilities.workspace
        if workspace is not None and workspace.configuration:
            try:
                [settings] = await ls.workspace_configuration_async(
                    types.ConfigurationParams([types.ConfigurationItem(section=SECTION)]))
            except Exception as e:  # a client that cannot answer keeps the settings it gave
                ls.log(f"cannot read the '{SECTION}' settings: {e}", types.MessageType.Warning)
                return
        else:
            settings = params.settings
        ls.apply_settings(settings)
        ls.refresh_all()

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: RemapServer, params: None) -> None:
        ls.client_log.detach()
        ls.shutdown_pool()
