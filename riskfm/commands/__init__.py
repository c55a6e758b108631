"""Typer sub-apps for the `riskfm` command line; riskfm/cli.py mounts them."""
