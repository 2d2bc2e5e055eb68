"""Command groups of the `spinal` CLI; each module exposes `register(app: typer.Typer)`."""
