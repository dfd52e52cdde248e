"""The language server's features, one module per feature, each with `register(server)`; `app` registers them."""
