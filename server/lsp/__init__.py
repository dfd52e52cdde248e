"""The language server: protocol glue over `remapdsl`, one module per feature."""
