"""The package's version, in one place: pyproject.toml, the provider info and the MWAA bundle
read it from here."""

__version__ = "0.1.0"
