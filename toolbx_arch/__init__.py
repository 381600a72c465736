"""tbx: toolbox-style containers of a foreign CPU architecture."""

__version__ = "0.1.0"
