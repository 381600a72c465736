"""Issue 31: native speed inside a foreign shell. tbx create --accelerate runs Debian's cross
compiler and the build tools natively inside a foreign container, with the emulated compiler's
output; uname, the package manager, the interpreters and what the build makes stay foreign.

Fixtures (scripts/provision-test-host.sh): a Debian 13 index (amd64 plain; arm64 and riscv64
with build-essential), whose native and cross gcc-14 are the same source revision, a Debian 12
index with build-essential for arm64 (they are not), and Debian's hello 2.10 source."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
import uuid
from pathlib import Path

import pytest

from tests.conftest import need

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "accel"
TRIPLET = {"aarch64": "aarch64-linux-gnu", "riscv64": "riscv64-linux-gnu"}
E_MACHINE = {"aarch64": 183, "riscv64": 243, "x86_64": 62}
GNU = {"aarch64": "aarch64-unknown-linux-gnu", "riscv64": "riscv64-unknown-linux-gnu"}
# the ELF machine of a file, read by the container's perl (foreign, whatever is accelerated)
MACHINE = """perl -e 'open F, "<", $ARGV[0] or die; read F, $b, 20; print unpack("v", substr($b, 18, 2)), "\\n"'"""


class Pair:
    """An accelerated container and a plain one of the same image, arch and user."""

    def __init__(self, who, arch: str, acc: str, plain: str, workdir: str) -> None:
        self.who, self.arch, self.acc, self.plain, self.workdir = who, arch, acc, plain, workdir

    def run(self, name: str, script: str, timeout: int = 900):
        return self.who.tbx("run", "-c", name, "sh", "-c", script, cwd=self.workdir, timeout=timeout)


def _pair(who, host, arch: str) -> Pair:
    ref = host["TBX_TEST_DEBIAN13_REF"]
    tag = uuid.uuid4().hex[:6]
    acc, plain = f"tbxt-acc-{arch}-{tag}", f"tbxt-plain-{arch}-{tag}"
    r = who.tbx("create", acc, "--arch", arch, "--image", ref, "-y", "--no-tls-verify", "--accelerate", timeout=2400)
    assert r.rc == 0, r.text
    assert "accelerated: native gcc 14.2.0" in r.out, r.text
    r = who.tbx("create", plain, "--arch", arch, "--image", ref, "-y", "--no-tls-verify", "--no-accelerate",
                timeout=900)
    assert r.rc == 0, r.text
    if who.rootless:
        workdir = Path(who.home) / f"tbxt-accel-{tag}"
        workdir.mkdir()
        shutil.chown(workdir, who.host.user, who.host.user)
    else:  # root's home is not shared with its containers (--userns auto): a directory inside
        workdir = None
    return Pair(who, arch, acc, plain, str(workdir) if workdir else who.home)


ALL = [("rootless", "aarch64"), ("rootless", "riscv64"), ("root", "aarch64")]
ROOTLESS = ALL[:2]   # a directory shared by both containers (root's containers share no home)


def _ids(p):
    return f"{p[0]}-{p[1]}"


@pytest.fixture(scope="module")
def pair(request, host):
    need(bool(host.env.get("TBX_TEST_DEBIAN13_REF")), "the Debian 13 fixtures (scripts/provision-test-host.sh)")
    who = request.getfixturevalue(request.param[0])
    p = _pair(who, host, request.param[1])
    yield p
    who.rm_containers(p.acc, p.plain)
    if who.rootless:
        shutil.rmtree(p.workdir, ignore_errors=True)


@pytest.mark.parametrize("pair", ALL, indirect=True, ids=_ids)
def test_uname_and_the_package_manager_stay_foreign_the_compiler_is_native(pair):
    arch, t = pair.arch, TRIPLET[pair.arch]
    script = f"""
set -e
uname -m; sh -c 'uname -m'; sudo uname -m
printf 'all:\\n\\t@uname -m\\n' > /tmp/Makefile; make -s -f /tmp/Makefile
{MACHINE} /usr/bin/{t}-gcc-14
{MACHINE} /usr/bin/dash
{MACHINE} /usr/bin/uname
{MACHINE} /usr/bin/perl
{MACHINE} /usr/bin/bash
{MACHINE} /usr/bin/m4
sh -c 'readlink /proc/$$/exe'
dpkg --print-architecture
"""
    r = pair.run(pair.acc, script)
    assert r.rc == 0, r.text
    lines = r.out.split()
    assert lines[:4] == [arch] * 4, r.out
    assert [int(x) for x in lines[4:10]] == [E_MACHINE["x86_64"], E_MACHINE["x86_64"], E_MACHINE[arch],
                                            E_MACHINE[arch], E_MACHINE["x86_64"], E_MACHINE["x86_64"]], r.out
    assert lines[10] == "/usr/bin/dash", r.out  # the shell of scripts and make recipes: native
    # the plain container of the same image: its own compiler
    r = pair.run(pair.plain, f"{MACHINE} /usr/bin/{t}-gcc-14")
    assert r.rc == 0 and int(r.out) == E_MACHINE[arch], r.text
    # native bash says what the container's own bash says, under sudo too (configure's scripts ask it)
    ask = """bash -c 'echo $HOSTTYPE $MACHTYPE $OSTYPE'; sudo bash -c 'echo $HOSTTYPE $MACHTYPE $OSTYPE'"""
    acc, plain = pair.run(pair.acc, ask), pair.run(pair.plain, ask)
    assert acc.rc == 0 and plain.rc == 0, acc.text + plain.text
    assert acc.out == plain.out and f"{arch} {GNU[arch]} linux-gnu" in plain.out, (acc.out, plain.out)
    # and the cross compiler's environment reaches sudo
    r = pair.run(pair.acc, "sudo sh -c 'echo $GCC_EXEC_PREFIX'")
    assert r.rc == 0 and r.out.strip() == "/usr/lib/gcc/", r.text


@pytest.mark.parametrize("pair", ALL, indirect=True, ids=_ids)
def test_the_compiler_compiles_and_links_with_lto_by_every_name(pair):
    arch, t = pair.arch, TRIPLET[pair.arch]
    script = f"""
set -e
cd /tmp
printf '#include <stdio.h>\\nint main(void) {{ puts("hi from %s"); return 0; }}\\n' {arch} > t.c
gcc -O2 t.c -o t1 && ./t1
gcc -O2 -flto t.c -o t2 && ./t2
/usr/bin/{t}-gcc-14 -O2 -flto t.c -o t3 && ./t3
gcc -O2 -B/usr/lib/gcc/{t}/14/ t.c -o t4 && ./t4
printf '#include <vector>\\n#include <cstdio>\\nint main() {{ std::vector<int> v{{1,2}}; std::printf("%%zu\\\\n", v.size()); }}\\n' > t.cc
g++ -O2 -flto t.cc -o t5 && ./t5
{MACHINE} t2
"""
    r = pair.run(pair.acc, script)
    assert r.rc == 0, r.text
    lines = r.out.splitlines()
    assert lines[:4] == [f"hi from {arch}"] * 4 and lines[4] == "2", r.out
    assert int(lines[5]) == E_MACHINE[arch], r.out


@pytest.mark.parametrize("pair", ROOTLESS, indirect=True, ids=_ids)
def test_objects_are_byte_identical_to_the_emulated_compilers(pair):
    """With the flags dpkg-buildflags gives (hardening included), built in the same directory by
    the accelerated and the plain container, the C objects and a linked program are the same,
    debug info and build-id included, once .comment (the compiler's version string) is removed;
    the C++ object once its debug info is set aside too (it names the C++ headers' directory,
    which the cross compiler spells /usr/<triplet>/include/c++)."""
    src = Path(pair.workdir) / "objs"
    shutil.copytree(FIXTURES, src)
    shutil.chown(src, pair.who.host.user, pair.who.host.user)
    for p in src.iterdir():
        shutil.chown(p, pair.who.host.user, pair.who.host.user)
    build = """
set -e
cd objs
eval "$(dpkg-buildflags --export=sh)"
mkdir -p out-$1
gcc $CPPFLAGS $CFLAGS -c frames.c -o out-$1/frames.o
gcc $CPPFLAGS $CFLAGS -c fortify.c -o out-$1/fortify.o
gcc $CPPFLAGS $CFLAGS $LDFLAGS frames.c fortify.c -o out-$1/prog
g++ $CPPFLAGS $CXXFLAGS -c shapes.cc -o out-$1/shapes.o
echo "$CFLAGS"
"""
    for name, label in ((pair.acc, "acc"), (pair.plain, "plain")):
        r = pair.who.tbx("run", "-c", name, "sh", "-c", build, "sh", label, cwd=pair.workdir, timeout=1800)
        assert r.rc == 0, r.text
        assert "-fstack-protector-strong" in r.out, r.out
    strip = ("cd objs && for f in out-acc/* out-plain/*; do objcopy --remove-section .comment $f $f.nc; "
             "objcopy --strip-debug --remove-section .comment $f $f.nd; done")
    r = pair.run(pair.plain, strip)
    assert r.rc == 0, r.text
    for obj, kept in (("frames.o", "nc"), ("fortify.o", "nc"), ("prog", "nc"), ("shapes.o", "nd")):
        acc, plain = (src / "out-acc" / f"{obj}.{kept}").read_bytes(), (src / "out-plain" / f"{obj}.{kept}").read_bytes()
        assert acc == plain, f"{obj} differs between the accelerated and the emulated compiler"
        assert b".text" in acc and len(acc) > 1000, obj  # a real object, not an empty file


def _unpack(who, container: str, workdir: str, tarball: Path) -> None:
    """``tarball`` unpacked into ``workdir`` as the container sees it: the shared home when
    rootless, copied into the container (whose home root's containers do not share) for root."""
    if who.rootless:
        subprocess.run(["tar", "-xzf", str(tarball), "-C", workdir], check=True)
        subprocess.run(["chown", "-R", f"{who.host.user}:{who.host.user}", workdir], check=True)
        return
    r = who.podman("cp", str(tarball), f"{container}:{workdir}/")
    assert r.rc == 0, r.text
    r = who.tbx("run", "-c", container, "tar", "-xzf", tarball.name, cwd=workdir)
    assert r.rc == 0, r.text


def hello_build(who, container: str, workdir: str, host, arch: str) -> None:
    """Debian's hello configured, built and checked in ``container``: make check passes, the
    program runs and is ``arch``'s, config.log says build and host are ``arch``."""
    hello = Path(host["TBX_TEST_HELLO_DIR"]) / "hello_2.10.orig.tar.gz"
    need(hello.exists(), "Debian's hello source (scripts/provision-test-host.sh)")
    _unpack(who, container, workdir, hello)
    # hello 2.10's config.guess (2014) predates riscv64: the container's own where it has one
    # (autotools-dev), as Debian's build does
    r = who.tbx("run", "-c", container, "sh", "-c", "cd hello-2.10 && { [ ! -f /usr/share/misc/config.guess ] "
                "|| cp /usr/share/misc/config.guess /usr/share/misc/config.sub build-aux/; } && ./configure && make && make check && ./hello"
                " && grep -E '^ac_cv_(build|host)=' config.log && " + MACHINE + " hello",
                cwd=workdir, timeout=3600)
    assert r.rc == 0, r.text[-3000:]
    lines = r.out.splitlines()
    assert "PASS: tests/hello-1" in r.out and "# FAIL:  0" in r.out, r.out[-2000:]
    assert lines[-4:] == ["Hello, world!", f"ac_cv_build={GNU[arch]}", f"ac_cv_host={GNU[arch]}",
                          str(E_MACHINE[arch])], r.out[-500:]


@pytest.mark.parametrize("pair", ALL, indirect=True, ids=_ids)
def test_hello_configures_builds_and_checks_accelerated(pair, host):
    hello_build(pair.who, pair.acc, pair.workdir, host, pair.arch)


def _deb_files(deb: Path, into: Path) -> dict[str, bytes]:
    """{path: content} of the regular files a .deb installs, and its control files."""
    for what, sub in (("-x", "data"), ("-e", "control")):
        subprocess.run(["dpkg-deb", what, str(deb), str(into / sub)], check=True)
    return {str(p.relative_to(into)): p.read_bytes() for p in sorted(into.rglob("*")) if p.is_file() and not p.is_symlink()}


@pytest.mark.parametrize("pair", ROOTLESS[:1], indirect=True, ids=_ids)
def test_dpkg_buildpackage_makes_the_emulated_builds_debs(pair, host, tmp_path):
    """dpkg-buildpackage -us -uc -b of Debian's hello 2.10-3 in the accelerated container makes
    the same .debs, byte for byte, as a plain container of the same image, everything emulated
    (scripts/hello-reference.sh built those once during provisioning: about ten minutes)."""
    ref = host.env.get("TBX_TEST_HELLO_DEB_ARM64", "")
    need(bool(ref) and Path(ref).is_dir(), "the emulated hello reference (scripts/hello-reference.sh)")
    work = Path(pair.workdir) / "deb"
    work.mkdir()
    for f in Path(host["TBX_TEST_HELLO_DIR"]).iterdir():
        shutil.copy(f, work / f.name)
    subprocess.run(["chown", "-R", f"{pair.who.host.user}:{pair.who.host.user}", str(work)], check=True)
    r = pair.who.tbx("run", "-c", pair.acc, "sh", "-c", "dpkg-source --no-check -x hello_2.10-3.dsc >/dev/null && "
                     "cd hello-2.10 && dpkg-buildpackage -us -uc -b", cwd=str(work), timeout=3600)
    assert r.rc == 0, r.text[-3000:]
    assert "# FAIL:  0" in r.out + r.err and "# PASS:  4" in r.out + r.err, r.text[-2000:]  # make check ran
    made = sorted(p.name for p in Path(ref).iterdir() if p.suffix in (".deb", ".ddeb"))
    assert "hello_2.10-3_arm64.deb" in made, made
    for name in made:
        mine, theirs = work / name, Path(ref) / name
        assert mine.exists(), f"the accelerated build made no {name}"
        if mine.read_bytes() != theirs.read_bytes():
            a, b = _deb_files(mine, tmp_path / f"acc-{name}"), _deb_files(theirs, tmp_path / f"emu-{name}")
            differ = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
            pytest.fail(f"{name} differs from the emulated build's: {differ or 'only in its packing'}")
    r = pair.run(pair.acc, f"dpkg-deb --fsys-tarfile deb/hello_2.10-3_arm64.deb | tar -xOf - ./usr/bin/hello > "
                           f"hello.bin && {MACHINE} hello.bin")
    assert r.rc == 0 and int(r.out) == E_MACHINE[pair.arch], r.text


def _fake_deb(into: Path, package: str, version: str) -> Path:
    """A .deb of ``package`` for arm64 that installs only a marker under /usr/share/doc."""
    root = into / f"{package}-src"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/doc/tbx-guard-test").mkdir(parents=True)
    (root / "usr/share/doc/tbx-guard-test/marker").write_text("x\n")
    (root / "DEBIAN/control").write_text(f"Package: {package}\nVersion: {version}\nArchitecture: arm64\n"
                                         "Maintainer: tbx tests <tbx@example.org>\nDescription: tbx test\n")
    deb = into / f"{package}_{version}_arm64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(root), str(deb)], check=True, capture_output=True)
    return deb


@pytest.mark.parametrize("pair", ROOTLESS[:1], indirect=True, ids=_ids)
def test_apt_refuses_packages_the_native_tools_are_bound_over_and_installs_others(pair, host):
    """dpkg cannot replace or remove a bound file: apt refuses such a package before dpkg starts,
    naming it and the fix, and changes nothing; other packages install as usual."""
    ref = host.env.get("TBX_TEST_HELLO_DEB_ARM64", "")
    need(bool(ref) and (Path(ref) / "hello_2.10-3_arm64.deb").exists(), "the emulated hello reference")
    work = Path(pair.workdir) / "guard"
    work.mkdir()
    shutil.copy(Path(ref) / "hello_2.10-3_arm64.deb", work)
    _fake_deb(work, "sed", "99")
    subprocess.run(["chown", "-R", f"{pair.who.host.user}:{pair.who.host.user}", str(work)], check=True)
    before = pair.run(pair.acc, "dpkg-query -W -f '${Version}' sed")
    assert before.rc == 0 and before.out.strip(), before.text
    r = pair.run(pair.acc, "sudo apt-get install -y ./guard/sed_99_arm64.deb")
    assert r.rc != 0, r.text
    assert "dpkg cannot replace or remove them" in r.err and "sed: /usr/bin/sed" in r.err, r.text
    assert "without --accelerate" in r.err, r.text
    after = pair.run(pair.acc, "dpkg-query -W -f '${Version}' sed; test ! -e /usr/share/doc/tbx-guard-test && "
                               "sudo apt-get remove -y make")
    assert after.rc != 0 and after.out.startswith(before.out.strip()), after.text  # nothing changed
    assert "make: /usr/bin/make" in after.err, after.text  # removing one is refused too
    r = pair.run(pair.acc, "sudo apt-get install -y ./guard/hello_2.10-3_arm64.deb && hello && dpkg -s make sed "
                           "| grep -c '^Status: install ok installed'")
    assert r.rc == 0 and r.out.split()[-2:] == ["world!", "2"], r.text


@pytest.mark.parametrize("pair", ALL, indirect=True, ids=_ids)
def test_list_and_check_say_the_container_is_accelerated(pair):
    r = pair.who.tbx("list", "--json")
    rows = {c["name"]: c for c in json.loads(r.out)["containers"]}
    assert rows[pair.acc]["accelerated"]["matched"] is True, rows[pair.acc]
    assert "native gcc 14.2.0-19cross1" in rows[pair.acc]["accelerated"]["what"], rows[pair.acc]
    assert rows[pair.plain]["accelerated"] is None
    r = pair.who.tbx("check", "--arch", pair.arch, "--json")
    acc = json.loads(r.out)["arches"][0]["accelerate"]
    assert acc["available"] and acc["tools"], acc
    assert any(c["name"] == pair.acc and c["matched"] for c in acc["containers"]), acc


@pytest.mark.parametrize("pair", ALL, indirect=True, ids=_ids)
def test_the_image_is_unchanged(pair, host):
    """Only binds: the image's own compiler is still there, and none of the native tools."""
    ref = host["TBX_TEST_DEBIAN13_REF"]
    t = TRIPLET[pair.arch]
    oci = {"aarch64": "arm64", "riscv64": "riscv64"}[pair.arch]
    cid = pair.who.podman("create", "--arch", oci, f"{ref}-{oci}", "true").out.strip()
    try:
        assert cid, "no container from the stored image"
        r = subprocess.run(pair.who.argv(["podman", "cp", f"{cid}:/usr/bin/{t}-gcc-14", "-"]), capture_output=True,
                           env=None if pair.who.rootless else pair.who.env)
        assert r.returncode == 0, r.stderr
        with tarfile.open(fileobj=__import__("io").BytesIO(r.stdout)) as tf:
            data = tf.extractfile(tf.getmembers()[0]).read(20)
        assert int.from_bytes(data[18:20], "little") == E_MACHINE[pair.arch]
        for gone in ("/usr/lib/gcc-cross", "/usr/lib/x86_64-linux-gnu", "/usr/libexec/gcc-cross"):
            r = subprocess.run(pair.who.argv(["podman", "cp", f"{cid}:{gone}", "-"]), capture_output=True,
                               env=None if pair.who.rootless else pair.who.env)
            assert r.returncode != 0, f"{gone} is in the image"
    finally:
        pair.who.podman("rm", "-f", cid)


def test_debian_12_is_refused_without_the_opt_in_and_marked_with_it(rootless, host, cleanup):
    need(bool(host.env.get("TBX_TEST_DEBIAN12_BUILD_REF")), "the Debian 12 build fixture")
    ref = host["TBX_TEST_DEBIAN12_BUILD_REF"]
    name = f"tbxt-acc12-{uuid.uuid4().hex[:6]}"
    cleanup(rootless, name)
    r = rootless.tbx("create", name, "--arch", "aarch64", "--image", ref, "-y", "--no-tls-verify", "--accelerate",
                     timeout=2400)
    assert r.rc == 1, r.text
    assert "12.2.0-14+deb12u1" in r.err and "12.2.0-14cross1" in r.err and "--accelerate-unmatched" in r.err, r.err
    assert name not in rootless.containers()
    # the tools of an older build (its image gone, no container binding them) go at the next create
    old = Path(rootless.home) / ".local/share/tbx/accel/0123456789ab"
    (old / "usr/bin").mkdir(parents=True)
    (old / "usr/bin/gcc").write_text("")
    for d in (old.parent, old, old / "usr", old / "usr/bin", old / "usr/bin/gcc"):
        shutil.chown(d, rootless.host.user, rootless.host.user)
    r = rootless.tbx("create", name, "--arch", "aarch64", "--image", ref, "-y", "--no-tls-verify",
                     "--accelerate-unmatched", timeout=2400)
    assert r.rc == 0 and "UNMATCHED" in r.out, r.text
    assert not old.exists(), "the tools of an older build stayed"
    rows = {c["name"]: c for c in json.loads(rootless.tbx("list", "--json").out)["containers"]}
    assert rows[name]["accelerated"]["matched"] is False, rows[name]
    assert "(accelerated, UNMATCHED compiler)" in rootless.tbx("list").out
    check = rootless.tbx("check", "--arch", "aarch64")
    assert f"container {name}" in check.out and "UNMATCHED" in check.out, check.text
    workdir = Path(rootless.home) / f"tbxt-accel12-{uuid.uuid4().hex[:6]}"
    workdir.mkdir()
    try:
        hello_build(rootless, name, str(workdir), host, "aarch64")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
