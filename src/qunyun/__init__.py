"""qunyun (群运): self-hosted community operations for chat groups."""

from qunyun import native as _native

__version__ = "0.1.0"

# before any engine module loads: the compiled engine when a fresh build is present
_native.activate()
