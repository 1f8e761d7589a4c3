"""qunyun (群运): self-hosted community operations for chat groups."""

__version__ = "0.1.0"
