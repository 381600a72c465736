"""One plain function per command; each returns an exit code, except ``enter``, which hands the
terminal to ``podman exec`` (``execvp``) and does not return."""
