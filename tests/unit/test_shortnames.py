"""Short-name resolution from registries.conf files (fixtures), as containers/image does it."""

import pytest

from toolbx_arch import shortnames
from toolbx_arch.errors import TbxError


def conf(tmp_path, name, text):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


def test_a_qualified_name_is_left_alone(tmp_path):
    reg = shortnames.load([conf(tmp_path, "r.conf", 'unqualified-search-registries = ["a.io", "b.io"]\n')])
    for ref in ("quay.io/x/y:1", "localhost/mine", "localhost:5000/t/a:1", "Host/x"):
        assert shortnames.resolve(ref, reg) is None


def test_an_alias_keeps_the_tag_and_says_where_it_came_from(tmp_path):
    main = conf(tmp_path, "r.conf", 'unqualified-search-registries = ["a.io", "b.io"]\n'
                                    '[aliases]\n"tbxt/alpine" = "localhost:5000/tbx/alpine"\n')
    res = shortnames.resolve("tbxt/alpine:3.19", shortnames.load([main]))
    assert res.name == "localhost:5000/tbx/alpine:3.19" and str(main) in res.how
    digest = "sha256:" + "a" * 64
    assert shortnames.resolve(f"tbxt/alpine@{digest}", shortnames.load([main])).name == \
        f"localhost:5000/tbx/alpine@{digest}"


def test_later_files_win_and_the_cache_ranks_below_configured_aliases(tmp_path):
    main = conf(tmp_path, "r.conf", '[aliases]\n"x" = "one.io/x"\n"y" = "one.io/y"\n')
    drop = conf(tmp_path, "d/50-mine.conf", '[aliases]\n"x" = "two.io/x"\n')
    cache = conf(tmp_path, "cache.conf", '[aliases]\n"y" = "cache.io/y"\n"z" = "cache.io/z"\n')
    reg = shortnames.load([main, drop], cache)
    assert [shortnames.resolve(n, reg).name for n in ("x", "y", "z")] == ["two.io/x", "one.io/y", "cache.io/z"]


def test_one_search_registry_is_taken_docker_io_with_library(tmp_path):
    reg = shortnames.load([conf(tmp_path, "r.conf", 'unqualified-search-registries = ["docker.io"]\n')])
    assert shortnames.resolve("debian:12", reg).name == "docker.io/library/debian:12"
    assert shortnames.resolve("me/tool", reg).name == "docker.io/me/tool"
    v1 = shortnames.load([conf(tmp_path, "v1.conf", '[registries.search]\nregistries = ["quay.io"]\n')])
    assert shortnames.resolve("x/y:2", v1).name == "quay.io/x/y:2"


def test_ambiguous_without_a_terminal_is_refused_with_the_candidates(tmp_path):
    reg = shortnames.load([conf(tmp_path, "r.conf", 'unqualified-search-registries = ["localhost:5000", "quay.io"]\n')])
    with pytest.raises(TbxError) as e:
        shortnames.resolve("tool:1", reg)
    assert "ambiguous" in e.value.message
    assert "localhost:5000/tool:1" in e.value.details and "quay.io/tool:1" in e.value.details
    asked = []
    res = shortnames.resolve("tool:1", reg, ask=lambda short, opts: asked.append(opts) or opts[1])
    assert res.name == "quay.io/tool:1" and asked == [["localhost:5000/tool:1", "quay.io/tool:1"]]


def test_nothing_configured_says_how_to_qualify(tmp_path):
    reg = shortnames.load([conf(tmp_path, "r.conf", "# nothing\n")])
    with pytest.raises(TbxError) as e:
        shortnames.resolve("debian:12", reg)
    assert "no unqualified-search registries" in e.value.message and "docker.io/library/debian:12" in e.value.fix


def test_a_broken_file_is_named(tmp_path):
    with pytest.raises(TbxError, match="cannot read"):
        shortnames.load([conf(tmp_path, "r.conf", "[aliases\n")])


def test_the_environment_variable_replaces_the_main_file(tmp_path, monkeypatch):
    p = conf(tmp_path, "mine.conf", "")
    monkeypatch.setenv("CONTAINERS_REGISTRIES_CONF", str(p))
    files, cache = shortnames.config_files(uid=1000)
    assert files[0] == p and cache.name == "short-name-aliases.conf"
