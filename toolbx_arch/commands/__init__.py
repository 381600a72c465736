"""One plain function per command; each returns an exit code."""
