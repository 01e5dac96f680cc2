"""Package data: the example router config (``router.example.yaml``)."""
