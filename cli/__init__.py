"""The bandit-router command line (typer): the composition root of core, storage and simulations."""
