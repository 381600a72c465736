"""The one error type. Raised anywhere, caught once, in ``toplevel.run``."""

from __future__ import annotations

# Exit codes, as toolbox and podman use them (126 and 127 come from podman exec itself).
EXIT_ERROR = 1
EXIT_ENGINE = 125


class TbxError(Exception):
    """A failure the user can act on.

    ``message`` says what failed, ``details`` why (optional, may be several lines), and ``fix``
    what to run or change next. ``exit_code`` follows toolbox/podman conventions. A program that
    is not installed is named in ``missing_tool``; the top level, which knows the host, adds the
    install command as the fix.
    """

    def __init__(self, message: str, *, fix: str | None = None, details: str | None = None,
                 exit_code: int = EXIT_ERROR, missing_tool: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.missing_tool = missing_tool
        self.fix = fix
        self.details = details
        self.exit_code = exit_code

    def __str__(self) -> str:
        return self.message

    def as_dict(self) -> dict:
        return {"error": self.message, "details": self.details, "fix": self.fix, "exit_code": self.exit_code}
