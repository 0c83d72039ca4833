"""Routes of the serving function, one module per resource."""
