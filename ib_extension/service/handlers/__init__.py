"""HTTP handlers of the service, one module per audience."""
