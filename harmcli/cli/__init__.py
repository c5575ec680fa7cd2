"""The command-line interface: thin Typer commands over the library. Heavy imports stay inside commands."""
