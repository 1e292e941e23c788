"""The whisperer REST API: app, request/response shapes, tokens. It validates and stores; it never
delivers."""
