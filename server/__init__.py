"""The servers users run (language server, overview), shipped as `remapdsl_server`."""
