"""The language server: protocol glue over `remapdsl`. `app.build_server` builds a `server.RemapServer` with
the features of `features/`, one module per feature; the other modules are what features share."""
