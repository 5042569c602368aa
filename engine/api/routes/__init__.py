"""One module per area of the API; each `add_routes(router, service)`."""
