"""The HTTP API: FastAPI app, request/response bodies, routes, webhooks."""
