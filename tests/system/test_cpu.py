"""Issue 16 (part): tbx create --cpu MODEL: QEMU_CPU for every emulated process in the container."""

import json
import re

import pytest


def hwcap(runner, name: str) -> str:
    r = runner.tbx("run", "-c", name, "env", "LD_SHOW_AUXV=1", "/bin/true")
    assert r.rc == 0, r.text
    m = re.search(r"^AT_HWCAP:\s*(\S+)", r.out, re.M)
    assert m, r.out
    return m.group(1)


def test_two_cpu_models_show_different_hwcaps_and_are_labelled(root, host, cleanup):
    names = {"a64fx": "tbxt-cpu-a64fx", "cortex-a53": "tbxt-cpu-a53"}
    cleanup(root, *names.values())
    for model, n in names.items():
        r = root.tbx("create", n, "--arch", "aarch64", "--cpu", model, "--image", host.index_ref, "-y",
                     "--no-tls-verify")
        assert r.rc == 0, r.text
        assert f"CPU {model}" in r.out
    caps = {model: hwcap(root, n) for model, n in names.items()}
    assert caps["a64fx"] != caps["cortex-a53"], caps
    rows = {c["name"]: c for c in json.loads(root.tbx("list", "--json").out)["containers"]}
    assert {rows[n]["cpu"] for n in names.values()} == set(names)
    r = root.tbx("run", "-c", names["a64fx"], "sh", "-c", "echo $QEMU_CPU")
    assert r.out.strip() == "a64fx"


@pytest.mark.parametrize("arch,cpu,words", [
    ("aarch64", "pentium-9000", "does not know the CPU model 'pentium-9000'"),
    ("x86_64", "max", "runs without emulation here"),
])
def test_a_cpu_model_that_cannot_apply_is_refused_and_makes_nothing(root, host, name, arch, cpu, words):
    before = (root.containers(), root.images_state())
    r = root.tbx("create", name, "--arch", arch, "--cpu", cpu, "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 1 and words in r.err and "Fix:" in r.err and "Traceback" not in r.text, r.text
    if "does not know" in words:
        assert "cortex-a53" in r.err  # the models are listed
    assert (root.containers(), root.images_state()) == before
