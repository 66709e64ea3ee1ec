"""Request and response bodies of the REST API, one module per area (what /docs shows and what requests
are checked against). Routes import them from here; storage and services never do."""
