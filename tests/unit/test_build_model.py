"""Pure parts of `tbx build`: arch and tag parsing, the per-arch names, the rootless reference
count and the listing of a namespace's binfmt_misc entries."""

import pytest

from toolbx_arch import arch as archmod
from toolbx_arch import binfmt, buildenv
from toolbx_arch.commands import build
from toolbx_arch.errors import TbxError


def test_every_alias_and_no_duplicates():
    assert [a.name for a in build.parse_arches("arm64,amd64,s390x")] == ["aarch64", "x86_64", "s390x"]
    with pytest.raises(TbxError, match="given twice"):
        build.parse_arches("arm64,aarch64")
    with pytest.raises(TbxError, match="not supported"):
        build.parse_arches("arm65")


def test_tag_and_per_arch_names():
    r = build.parse_tag("app")
    assert str(r) == "localhost/app:latest"
    assert build.arch_image(build.parse_tag("127.0.0.1:5000/x/app:1"), archmod.resolve("arm64")) == \
        "127.0.0.1:5000/x/app:1-arm64"
    assert build.arch_image(r, archmod.resolve("x86_64")) == "localhost/app:latest-amd64"
    with pytest.raises(TbxError, match="digest"):
        build.parse_tag("app@sha256:" + "a" * 64)
    with pytest.raises(TbxError, match="not a valid image reference"):
        build.parse_tag("Bad Ref")


def test_holders_are_pruned_to_live_processes():
    st = buildenv.State.parse('{"holders": {"1:5": ["qemu-aarch64"], "2:7": ["qemu-s390x"]}}')
    st.prune(alive=lambda h: h == "1:5")          # holder 2 died (SIGKILL)
    assert st.holders == {"1:5": ["qemu-aarch64"]}
    assert buildenv.State.parse(st.dump()).holders == st.holders


def test_a_damaged_state_file_is_an_empty_count():
    for text in ("", "{", "[]", '{"holders": 3}'):
        st = buildenv.State.parse(text)
        assert st.holders == {}


def test_holder_ids_name_a_live_process_only():
    me = buildenv.holder_id()
    assert buildenv.holder_alive(me)
    pid = me.split(":")[0]
    assert not buildenv.holder_alive(f"{pid}:1")          # same PID, another start time
    assert not buildenv.holder_alive("999999999:1")


def test_subordinate_range(tmp_path):
    f = tmp_path / "subuid"
    f.write_text("tbxtest:100000:65536\nroot:1001000000:65536\nbad line\n")
    assert buildenv.subordinate_range("root", str(f)) == (1001000000, 65536)
    assert buildenv.subordinate_range("nobody", str(f)) is None


def test_podmans_own_build_args_are_not_reported_as_unconsumed():
    from toolbx_arch.commands.build import _without_podmans_args

    w = "[Warning] one or more build args were not consumed: "
    assert _without_podmans_args(w + "[TARGETARCH TARGETOS TARGETPLATFORM TARGETVARIANT]") is None
    assert _without_podmans_args(w + "[MINE TARGETARCH]") == w + "[MINE]"
    assert _without_podmans_args("STEP 1/2: FROM x") == "STEP 1/2: FROM x"
