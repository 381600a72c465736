"""Issue 29 (rough edges a day of real use found): where a command runs when the current directory
is not shared, and completion of pulled emulators' names."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .test_build import ctx, ref  # noqa: F401 - fixtures shared with the build tests


def test_run_from_an_unshared_directory_says_where_it_runs(rootless, host, name, cleanup):
    cleanup(rootless, name)
    r = rootless.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    d = tempfile.mkdtemp(prefix="tbxt-unshared-")
    try:
        os.chown(d, host.uid, host.uid)
        r = rootless.tbx("run", "-c", name, "pwd", cwd=d)
        assert (r.rc, r.out.strip()) == (0, rootless.home), r.text
        assert r.err.strip() == f"tbx: running in {rootless.home}: {d} is not shared with the container " \
                                f"(only {rootless.home} is)", r.err
        # from the home, not a word
        r = rootless.tbx("run", "-c", name, "pwd")
        assert (r.rc, r.out.strip(), r.err) == (0, rootless.home, ""), r.text
    finally:
        shutil.rmtree(d)


def test_pulled_emulator_names_complete(rootless, host):
    store = Path(rootless.home) / ".local" / "share" / "tbx" / "emulators"
    shutil.rmtree(store, ignore_errors=True)
    try:
        assert rootless.tbx("emulator", "pull", host["TBX_TEST_EMULATOR_REF"], "--no-tls-verify").rc == 0
        (emu,) = json.loads(rootless.tbx("emulator", "list", "--json").out)["emulators"]
        for words in ("tbx emulator rm 127.0.0", "tbx create --emulator 127.0.0"):
            r = rootless.tbx(env={"_TBX_COMPLETE": "complete_bash", "COMP_WORDS": words,
                                  "COMP_CWORD": str(len(words.split()) - 1)})
            assert emu["name"] in r.out.split(), (words, r.text)
    finally:
        shutil.rmtree(store, ignore_errors=True)


def test_create_volume_shares_a_host_directory_as_asked_and_refuses_the_hosts_own(who, host, name, cleanup):
    d = tempfile.mkdtemp(prefix="tbxt-data-")
    os.chmod(d, 0o755)
    Path(d, "f").write_text("hello\n")
    if who.rootless:
        for p in (d, os.path.join(d, "f")):
            os.chown(p, host.uid, host.uid)
    cleanup(who, name, name + "-bad")
    try:
        r = who.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "--volume", f"{d}:/data:ro", "-y",
                    "--no-tls-verify")
        assert r.rc == 0, r.text
        r = who.tbx("run", "-c", name, "cat", "/data/f")
        assert (r.rc, r.out) == (0, "hello\n"), r.text
        r = who.tbx("run", "-c", name, "sh", "-c", "echo x > /data/g")
        assert r.rc != 0 and "Read-only file system" in r.err, r.text
        assert not Path(d, "g").exists()
        rows = json.loads(who.tbx("list", "--json").out)["containers"]
        (row,) = [c for c in rows if c["name"] == name]
        assert row["volumes"] == [{"host": d, "container": "/data", "mode": "ro"}], row
        before = who.containers()
        r = who.tbx("create", name + "-bad", "--arch", "x86_64", "--image", host.index_ref, "--volume", "/proc:/x",
                    "-y", "--no-tls-verify")
        assert r.rc == 1 and "would share /proc" in r.err and "Fix:" in r.err, r.text
        assert who.containers() == before
    finally:
        shutil.rmtree(d)


def test_emulator_pull_on_a_terminal_shows_the_same_bar_as_image_pulls(root, host):
    import re

    import pytest

    from .conftest import TBX

    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(TBX, ["emulator", "pull", host["TBX_TEST_EMULATOR_REF"], "--no-tls-verify"],
                          env=root.env, cwd="/root", encoding="utf-8", timeout=300, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    child.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before)
    try:
        assert child.exitstatus == 0, text[-2000:]
        assert re.search(r"[\d.]+/[\d.]+ MB", text) and "100%" in text, text[-2000:]
        assert "tbx: layer " not in text, text[-2000:]  # the bar, not the lines for logs
    finally:
        for e in json.loads(root.tbx("emulator", "list", "--json").out)["emulators"]:
            root.tbx("emulator", "rm", e["name"])



def test_build_digests_are_what_the_registry_holds_and_a_queued_arch_says_so(who, ctx, ref):  # noqa: F811
    import re
    import subprocess

    import uuid

    once = uuid.uuid4().hex  # a step no earlier build has: the build cache has nothing for it
    d = ctx(f"RUN uname -m > /arch && sleep 2 && echo {once} > /once")
    r = who.tbx("build", d, "--arch", "x86_64,aarch64", "--tag", ref, "--push", "--no-tls-verify", "--jobs", "1",
                timeout=900)
    assert r.rc == 0, r.text
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True)
    listed = {m["digest"] for m in json.loads(raw.stdout)["manifests"]}
    table = [ln.split() for ln in r.out.splitlines() if ln.split()[:1] in (["x86_64"], ["aarch64"])]
    assert "DIGEST (REGISTRY)" in r.out and len(table) == 2, r.out
    for row in table:
        assert any(dg.split(":")[1].startswith(row[3]) for dg in listed), (row, listed)
    # --jobs 1: the second arch said it waits, and its row shows the wait apart from its time
    assert re.search(r"\[aarch64\] tbx: waiting for a build slot \(1 running, --jobs 1\)", r.err + r.out), r.text
    second = next(row for row in table if row[0] == "aarch64")
    m = re.search(r"([\d.]+)s \(\+([\d.]+)s queued\)", " ".join(second))
    assert m and float(m.group(2)) >= 2, second
    # and --json gives the same digests, the wait apart (another step: nothing comes from the cache)
    d = ctx(f"RUN uname -m > /arch && sleep 2 && echo {once} again > /again")
    r = who.tbx("build", d, "--arch", "x86_64,aarch64", "--tag", ref, "--push", "--no-tls-verify", "--jobs", "1",
                "--json", timeout=900)
    assert r.rc == 0, r.text
    data = json.loads(r.out)
    raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                         capture_output=True, text=True)
    listed = {m["digest"] for m in json.loads(raw.stdout)["manifests"]}
    assert {p["digest"] for p in data["platforms"]} == listed, (data, listed)
    waits = {p["arch"]: p["waited"] for p in data["platforms"]}
    assert waits["x86_64"] < 0.5 <= waits["aarch64"], waits
    assert all(p["image_id"] for p in data["platforms"]), data


def test_a_build_says_each_thing_once(root, ctx, ref):  # noqa: F811
    """No warning about the build arguments podman sets itself; a failing arch's last lines are
    shown once (as they stream), not again under Warning."""
    d = ctx("RUN echo MARK$((40+2)) && false")
    r = root.tbx("build", d, "--arch", "x86_64", "--tag", ref, "--no-tls-verify", timeout=600)
    assert r.rc == 1, r.text
    assert "were not consumed" not in r.text, r.text
    assert r.text.count("MARK42") == 1, r.text
    assert "x86_64: the build failed (its last lines are above" in r.err, r.text


def test_several_arches_from_an_unshared_directory_say_where_they_run_as_a_field_under_json(rootless, host, name,
                                                                                              cleanup):
    cleanup(rootless, name)
    assert rootless.tbx("create", name, "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    d = tempfile.mkdtemp(prefix="tbxt-unshared-")
    try:
        os.chown(d, host.uid, host.uid)
        r = rootless.tbx("run", "--arch", "x86_64,aarch64", "--json", "--", "pwd", cwd=d)  # (aarch64: none here)
        assert "tbx: running in" not in r.err, r.text
        data = json.loads(r.out)
        assert data["workdir"] == rootless.home and d in data["workdir_note"], data
    finally:
        shutil.rmtree(d)
