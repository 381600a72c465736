"""Issue 6: create, list, rm through the podman API, rootful and rootless."""

import json
import subprocess

import pytest

from .conftest import TBX


def list_json(runner):
    r = runner.tbx("list", "--json")
    assert r.rc == 0, r.text
    return json.loads(r.out)


def api_services(runner) -> list[str]:
    r = subprocess.run(["pgrep", "-af", "podman system service"], capture_output=True, text=True)
    return [l for l in r.stdout.splitlines() if "/tbx/podman-" in l]


def test_foreign_and_native_containers_coexist(who, host, cleanup):
    arm, native = "debian-12-arm64", "debian-12"
    cleanup(who, arm, native)
    native_id_before = who.image_id(host.index_ref)

    r = who.tbx("create", "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    assert arm in r.out
    assert who.image_id(host.index_ref) == native_id_before  # native tag untouched (created or not)

    r = who.tbx("create", "--arch", "x86_64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text

    rows = {c["name"]: c for c in list_json(who)["containers"]}
    assert rows[arm]["arch"] == "aarch64" and rows[arm]["oci_arch"] == "arm64"
    assert rows[native]["arch"] == "x86_64" and rows[native]["oci_arch"] == "amd64"
    insp = json.loads(who.podman("container", "inspect", arm).out)[0]
    img = json.loads(who.podman("image", "inspect", insp["Image"]).out)[0]
    assert img["Architecture"] == "arm64"
    assert insp["Config"]["Labels"]["io.github.tbx.arch"] == "aarch64"
    assert rows[arm]["image"] == f"{host.index_ref}-arm64"

    r = who.tbx("rm", arm, native)
    assert r.rc == 0, r.text
    names = {c["name"] for c in list_json(who)["containers"]}
    assert arm not in names and native not in names
    assert not api_services(who)


def test_create_twice_says_already_exists(root, host, name, cleanup):
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    r = root.tbx("create", name, "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 1 and "already exists" in r.err


def test_concurrent_creates_of_one_name_make_one_container(who, host, name, cleanup):
    cleanup(who, name)
    assert who.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    argv = who.argv([TBX, "create", name, "--arch", "arm64", "--image", host.index_ref, "--no-tls-verify"])
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=who.home,
                              stdin=subprocess.DEVNULL, env=None if who.rootless else who.env) for _ in range(2)]
    results = [(p.wait(120), p.stdout.read(), p.stderr.read()) for p in procs]
    codes = sorted(rc for rc, _, _ in results)
    assert codes == [0, 1], results
    loser = next(err for rc, _, err in results if rc == 1)
    assert "already exists" in loser and "Traceback" not in loser
    assert who.containers().count(name) == 1


def test_rollback_removes_only_the_container_of_its_own_create_id(root, host, name, cleanup):
    """What an interrupted or failed create undoes: the container carrying its create id, under
    whatever name, and nothing else (a parallel create's container of the same image stays)."""
    from toolbx_arch import containers, naming

    mine, other = f"{name}-mine", f"{name}-other"
    cleanup(root, mine, other)
    img = root.podman("images", "-q", "--filter", "reference=*tbx-test/debian*").out.split()
    assert img, "a test image is stored"
    for n, cid in ((mine, "id-mine-" + name), (other, "id-other-" + name)):
        r = root.podman("create", "--name", n, "--label", f"{naming.LABEL_CREATE_ID}={cid}", img[0], "true")
        assert r.rc == 0, r.text
    containers.remove_by_create_id("id-mine-" + name)
    left = root.containers()
    assert mine not in left and other in left


def test_create_of_a_single_arch_image_for_another_arch_creates_nothing(who, host, name):
    before = (who.images_state(), who.containers())
    r = who.tbx("create", name, "--arch", "arm64", "--image", host.single_ref, "-y", "--no-tls-verify")
    assert r.rc == 1 and "single-architecture linux/amd64" in r.err
    assert (who.images_state(), who.containers()) == before


@pytest.mark.parametrize("args,expect", [
    (["--arch", "arm65"], "architecture 'arm65' is not supported"),
    (["--arch", ""], "architecture name is empty"),
    (["--image", "Not A Ref"], "is not a valid image reference"),
    (["--arch", "arm64", "--image", "x", "--distro", "fedora"], "cannot be combined"),
])
def test_bad_input_is_one_clear_error(root, name, args, expect):
    before = root.containers()
    r = root.tbx("create", name, *args, "-y")
    assert r.rc == 1 and expect in r.err and "Traceback" not in r.text
    assert root.containers() == before


@pytest.mark.parametrize("bad,why", [("bad/name", "is not valid"), ("-bad", "starts with '-'"),
                                     ("ünïcode", "is not valid"), ("x" * 254, "is not valid")])
def test_bad_container_name(root, host, bad, why):
    """The name reaches tbx's own validation (after '--', so click does not take it for an option)."""
    before = root.containers()
    r = root.tbx("create", "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify", "--", bad)
    assert r.rc == 1 and f"container name {bad!r} {why}" in r.err and "Fix:" in r.err, r.text
    assert root.containers() == before


def test_rm_unknown_and_running(root, host, name, cleanup):
    cleanup(root, name)
    r = root.tbx("rm", "no-such-tbx-container")
    assert r.rc == 1 and "does not exist" in r.err
    assert root.tbx("create", name, "--arch", "arm64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    assert root.tbx("run", "-c", name, "true").rc == 0
    r = root.tbx("rm", name)
    assert r.rc == 1 and "running" in r.err and "--force" in r.err
    assert root.tbx("rm", "--force", name).rc == 0
    assert name not in root.containers()


def test_create_without_y_and_without_a_terminal_does_not_pull(root, host, name):
    root.podman("rmi", "-f", f"{host.index_ref}-arm64")
    before = (root.containers(), root.images_state())
    r = root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "--no-tls-verify")
    assert r.rc == 1 and "is not stored locally" in r.err and "-y" in r.err
    assert (root.containers(), root.images_state()) == before


def test_list_with_an_empty_arch_is_an_error(root):
    r = root.tbx("list", "--arch", "")
    assert r.rc == 1 and "architecture name is empty" in r.err


def _imports(runner, *args, pty=False) -> str:
    """Modules a tbx command imports (PYTHONPROFILEIMPORTTIME goes to stderr, before any exec)."""
    env = {"PYTHONPROFILEIMPORTTIME": "1"}
    if not pty:
        return runner.tbx(*args, env=env).err
    import pexpect

    argv = runner.argv([TBX, *args], env)
    import io

    child = pexpect.spawn(argv[0], argv[1:], env={**runner.env, **env} if not runner.rootless else None,
                          encoding="utf-8", timeout=60)
    child.logfile_read = seen = io.StringIO()
    child.expect(r"[\$#] ")
    child.sendline("exit 0")
    child.expect(pexpect.EOF)
    return seen.getvalue().replace("\r\n", "\n")


def test_everyday_commands_load_no_podman_bindings_and_no_cli_framework(root, host, name, cleanup):
    """list, run --arch and enter skip typer/click and never touch podman-py or an API service."""
    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    root.tbx("list")  # writes the catalog `run --arch` and `enter --arch` use
    assert root.tbx("run", "-c", name, "true").rc == 0
    services = len(api_services(root))
    for args, pty in ((["list"], False), (["list", "--json"], False), (["run", "--arch", "arm64", "true"], False),
                      (["run", "-c", name, "true"], False), (["enter", name], True), (["enter", "--arch", "aarch64"], True),
                      (["rm", "no-such-tbxt-container"], False)):
        text = _imports(root, *args, pty=pty)
        mods = {line.split("|")[-1].strip() for line in text.splitlines() if line.startswith("import time:")}
        assert mods, f"{args}: no import profile"
        heavy = {m for m in mods if m.split(".")[0] in ("podman", "typer", "click", "rich", "requests", "elftools")}
        assert not heavy, f"{args} imported {sorted(heavy)}"
    assert len(api_services(root)) == services


def test_sigkilled_create_leaves_no_api_service(root, host):
    import signal
    import time

    img = f"{host.index_ref}-arm64"
    assert root.tbx("image", "pull", host.index_ref, "--arch", "arm64", "--no-tls-verify").rc == 0
    before = set(api_services(root))
    for delay in (0.1, 0.3, 0.5, 0.8):
        n = f"tbxt-kill-{int(delay * 10)}"
        p = subprocess.Popen([TBX, "create", n, "--arch", "aarch64", "--image", img], env=root.env, cwd="/root",
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
        p.wait()
        time.sleep(1)
        assert set(api_services(root)) <= before
        root.rm_containers(n)


def test_list_shows_each_stored_name_once_with_real_times_and_survives_a_closed_pipe(root, host, name, cleanup):
    import re

    cleanup(root, name)
    assert root.tbx("create", name, "--arch", "aarch64", "--image", host.index_ref, "-y", "--no-tls-verify").rc == 0
    data = json.loads(root.tbx("list", "--json").out)
    assert data["schema"] == 1
    names = [i["image"] for i in data["images"]]
    assert len(names) == len(set(names)) and f"{host.index_ref}-arm64" in names
    row = next(c for c in data["containers"] if c["name"] == name)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", row["created"]), row
    r = subprocess.run(f"{TBX} list --json | head -c 10", shell=True, capture_output=True, text=True, env=root.env)
    assert "Traceback" not in r.stderr and r.stderr == "", r.stderr
