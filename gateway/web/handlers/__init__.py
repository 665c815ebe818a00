"""Request handlers: one module per gateway endpoint, plus the proxy catch-all."""
