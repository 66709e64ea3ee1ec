"""Request and response bodies of the REST API, one module per area: what /docs shows, what requests are
checked against and what answers are described by. Routes take and declare them; a service may take a
parsed request (the quantization settings); storage never sees them."""
