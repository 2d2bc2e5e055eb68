"""The device API's routers, one module per area; `spinal_edge.api.app.create_app` mounts them."""
