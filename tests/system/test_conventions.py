"""Issue 18: podman's conventions, against real podman, skopeo and the local registry: -a is --all,
--platform and platform strings, short names through registries.conf, pull progress."""

import json
import re

import pytest

from .conftest import TBX


def test_dash_a_is_all_and_arch_has_no_short_form(root):
    listed = root.tbx("list", "--json")
    assert listed.rc == 0, listed.text
    r = root.tbx("list", "-a", "--json")
    assert r.rc == 0, r.text
    assert json.loads(r.out)["containers"] == json.loads(listed.out)["containers"]
    for cmd in (("rm", "-a", "tbxt-not-a-name"), ("rmi", "-a", "tbxt-not-an-image")):
        r = root.tbx(*cmd)  # -a is --all: with a name it is refused, and nothing is removed
        assert r.rc == 1 and "cannot be combined with names" in r.err, r.text
    r = root.tbx("create", "-a", "aarch64")
    assert r.rc == 1 and "No such option: -a" in r.err and "Traceback" not in r.text


def test_a_mistyped_command_gets_one_hint(root):
    r = root.tbx("crate")
    assert r.rc != 0 and r.err.count("Did you mean 'create'?") == 1, r.text


def test_platform_on_create_run_and_inspect(root, host, name, cleanup):
    cleanup(root, name)
    r = root.tbx("image", "inspect", host.index_ref, "--arch", "linux/arm64", "--no-tls-verify", "--json")
    assert r.rc == 0, r.text
    assert json.loads(r.out)["platform"] == "linux/arm64/v8"
    r = root.tbx("image", "inspect", host.index_ref, "--platform", "linux/arm64/v8", "--no-tls-verify", "--json")
    assert r.rc == 0 and json.loads(r.out)["architecture"] == "arm64", r.text

    r = root.tbx("create", name, "--platform", "linux/arm64/v8", "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 0, r.text
    row = next(c for c in json.loads(root.tbx("list", "--json").out)["containers"] if c["name"] == name)
    assert row["arch"] == "aarch64"
    for args in (("--platform", "linux/arm64/v8"), ("--arch", "linux/arm64"), ("--platform=linux/arm64",)):
        r = root.tbx("run", "-c", name, *args, "uname", "-m")
        assert r.rc == 0 and r.out.strip() == "aarch64", (args, r.text)


@pytest.mark.parametrize("platform,words", [
    ("linux/arm64/v7", "variant v7 contradicts aarch64"),
    ("windows/arm64", "Linux containers only"),
])
def test_a_contradicting_platform_is_refused_and_makes_nothing(root, host, name, platform, words):
    before = (root.containers(), root.images_state())
    r = root.tbx("create", name, "--platform", platform, "--image", host.index_ref, "-y", "--no-tls-verify")
    assert r.rc == 1 and words in r.err and "Fix:" in r.err, r.text
    assert (root.containers(), root.images_state()) == before


@pytest.fixture
def registries_conf(tmp_path, host):
    """A registries.conf of the test's own (CONTAINERS_REGISTRIES_CONF), with an alias to the
    local registry and two search registries; drop-ins of /etc still apply, as in podman."""
    reg = host.index_ref.split("/", 1)[0]
    path = tmp_path / "registries.conf"
    path.write_text(f'unqualified-search-registries = ["{reg}", "{host["TBX_TEST_AUTH_REGISTRY"]}"]\n'
                    f'[aliases]\n"tbxt/debian" = "{host.index_ref.rsplit(":", 1)[0]}"\n')
    path.chmod(0o644)
    tmp_path.chmod(0o755)
    return {"CONTAINERS_REGISTRIES_CONF": str(path)}


def test_a_short_name_resolves_through_an_alias_to_the_local_registry(root, host, name, cleanup, registries_conf):
    cleanup(root, name)
    r = root.tbx("image", "inspect", "tbxt/debian:12", "--arch", "aarch64", "--no-tls-verify", "--json",
                 env=registries_conf)
    assert r.rc == 0, r.text
    assert json.loads(r.out)["reference"] == host.index_ref
    assert f"resolved the short name 'tbxt/debian:12' to {host.index_ref}" in r.err
    assert registries_conf["CONTAINERS_REGISTRIES_CONF"] in r.err  # says which file's alias
    r = root.tbx("create", name, "--arch", "aarch64", "--image", "tbxt/debian:12", "-y", "--no-tls-verify",
                 env=registries_conf)
    assert r.rc == 0, r.text
    labels = json.loads(root.podman("container", "inspect", name).out)[0]["Config"]["Labels"]
    assert labels["io.github.tbx.source"] == host.index_ref


def test_an_ambiguous_short_name_without_a_terminal_is_refused_with_the_candidates(root, host, name,
                                                                                   registries_conf):
    before = (root.containers(), root.images_state())
    reg, auth = host.index_ref.split("/", 1)[0], host["TBX_TEST_AUTH_REGISTRY"]
    r = root.tbx("create", name, "--arch", "aarch64", "--image", "tbx-test/debian:12", "-y", "--no-tls-verify",
                 env=registries_conf)
    assert r.rc == 1 and "ambiguous" in r.err, r.text
    assert f"{reg}/tbx-test/debian:12" in r.err and f"{auth}/tbx-test/debian:12" in r.err
    assert (root.containers(), root.images_state()) == before
    r = root.tbx("image", "inspect", "tbx-test/debian:12", "--json", env=registries_conf)
    err = json.loads(r.out)["error"]
    assert r.rc == 1 and err["exit_code"] == 1 and "ambiguous" in err["message"]


@pytest.fixture
def no_arm64_copy(root, host):
    def clear():
        root.podman("rmi", "-f", f"{host.index_ref}-arm64")
    clear()
    yield
    clear()


def test_a_pull_without_a_terminal_logs_one_line_per_layer(root, host, no_arm64_copy):
    r = root.tbx("image", "pull", host.index_ref, "--arch", "aarch64", "--no-tls-verify")
    assert r.rc == 0, r.text
    layers = re.findall(r"^tbx: layer (\d+)/(\d+) sha256:[0-9a-f]{12} \(([\d.]+ [kM]B)\)$", r.err, re.M)
    assert layers and len(layers) == int(layers[0][1]), r.err
    assert [int(n) for n, _, _ in layers] == list(range(1, len(layers) + 1))
    assert re.search(r"^tbx: .*: \d+ layers?, [\d.]+ MB compressed$", r.err, re.M), r.err


def test_a_pull_on_a_terminal_shows_bytes_and_percentage(root, host, no_arm64_copy):
    pexpect = pytest.importorskip("pexpect")
    child = pexpect.spawn(TBX, ["image", "pull", host.index_ref, "--arch", "aarch64", "--no-tls-verify"],
                          env=root.env, cwd="/root", encoding="utf-8", timeout=300, dimensions=(40, 160))
    child.expect(pexpect.EOF)
    child.close()
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", child.before)
    assert child.exitstatus == 0, text[-2000:]
    assert re.search(r"[\d.]+/[\d.]+ MB", text) and "100%" in text, text[-2000:]
    assert f"{host.index_ref}-arm64" in text
