"""Shell completion: the scripts ``tbx completion SHELL`` prints, and the dynamic values (tbx
container and image names; fast: podman CLI, no API socket)."""

from __future__ import annotations

from . import runner
from .naming import MANAGED_FILTER

SHELLS = {"bash": "tbx.bash", "zsh": "tbx.zsh", "fish": "tbx.fish"}  # shell -> script file name


def container_names() -> list[str]:
    if runner.which("podman") is None:
        return []
    r = runner.run(["podman", "ps", "-a", "--filter", f"label={MANAGED_FILTER}", "--format", "{{.Names}}"],
                   timeout=10)
    return r.stdout.split() if r.returncode == 0 else []


def image_names() -> list[str]:
    if runner.which("podman") is None:
        return []
    r = runner.run(["podman", "images", "--format", "{{.Repository}}:{{.Tag}}"], timeout=10)
    return [n for n in r.stdout.split() if not n.startswith("<none>")] if r.returncode == 0 else []


def completion_script(shell: str) -> str:
    from typer._completion_shared import get_completion_script

    text = get_completion_script(prog_name="tbx", complete_var="_TBX_COMPLETE", shell=shell).rstrip() + "\n"
    if shell == "zsh":
        # Autoloaded from $fpath as _tbx, the file's body runs on the first Tab: it must complete
        # then, not only define the function (else the first Tab does nothing). Sourced, it
        # registers the function as before.
        text = text.replace("compdef _tbx_completion tbx\n",
                            'if [[ "${funcstack[1]}" == "_tbx" ]]; then\n'
                            '  _tbx_completion "$@"\n'
                            "else\n"
                            "  compdef _tbx_completion tbx\n"
                            "fi\n")
    return text
