"""The file readers: ELF files, ld.so.cache, ld.so.conf (case 17), #! lines, loader facts."""

from __future__ import annotations

import os
import struct

import pytest

from acigen.helpers.elf import elffile, facts, ldcache, ldconf, scripts
from acigen.helpers.elf.search import expand_glibc, expand_musl, tidy
from acigen.helpers.rootfs.walk import Walker
from tests.elf.elfwriter import EM_386, EM_AARCH64, Elf, build
from tests.elf.fixtures import DEBIAN_DIRS, cache_bytes, loader_rodata


def parse(tmp_path, elf: Elf | bytes) -> elffile.ElfInfo:
    path = tmp_path / "obj"
    path.write_bytes(elf if isinstance(elf, bytes) else build(elf))
    return elffile.load(str(path), os.stat(path))


@pytest.mark.parametrize("elfclass, little, machine", [
    (64, True, 62), (32, True, EM_386), (64, False, EM_AARCH64), (32, False, 20)])
def test_elf_fields_any_class_and_byte_order(tmp_path, elfclass, little, machine):
    info = parse(tmp_path, Elf(
        interp="/lib/ld.so", needed=["liba.so", "libb.so"], filters=["libf.so"],
        auxiliary=["libx.so"], soname="libme.so.1", rpath="/r", runpath="$ORIGIN/../lib",
        flags_1=0x800, elfclass=elfclass, little=little, machine=machine,
        verneed={"libc.so.6": ["GLIBC_2.2.5", "GLIBC_2.34"]}, verdef=["ME_1", "ME_2"],
        imports=["iconv_open"]))
    assert (info.elfclass, info.little, info.e_machine) == (elfclass, little, machine)
    assert info.interp == "/lib/ld.so"
    assert info.deps == (("needed", "liba.so"), ("needed", "libb.so"), ("filter", "libf.so"),
                         ("auxiliary", "libx.so"))
    assert (info.soname, info.rpath, info.runpath) == ("libme.so.1", "/r", "$ORIGIN/../lib")
    assert info.nodeflib and not info.pie
    assert info.verneed == (("libc.so.6", (("GLIBC_2.2.5", False), ("GLIBC_2.34", False))),)
    assert info.verdef == ("ME_1", "ME_2")
    assert info.imports == {"iconv_open"}


def test_defined_symbol_is_not_an_import(tmp_path):
    assert parse(tmp_path, Elf(exports=["iconv_open"])).imports == frozenset()


def test_real_gnu_hash_files_are_read(tmp_path):
    # the host's own libc (DT_GNU_HASH, section headers, everything) parses like ours
    info = elffile.load("/lib/x86_64-linux-gnu/libc.so.6",
                        os.stat("/lib/x86_64-linux-gnu/libc.so.6"))
    assert info.soname == "libc.so.6" and "GLIBC_2.34" in info.verdef
    assert info.needed == ("ld-linux-x86-64.so.2",)


@pytest.mark.parametrize("data, reason", [
    (b"", "file too short"), (b"\x7fEL", "file too short"), (b"#!/bin/sh\n", "invalid ELF header"),
    (b"\x7fELF\x03\x01" + bytes(58), "invalid ELF class"),
    (b"\x7fELF\x02\x01" + bytes(10), "file too short"),
])
def test_files_the_loader_rejects(tmp_path, data, reason):
    with pytest.raises(elffile.ElfError, match=reason):
        parse(tmp_path, data)


def test_truncated_dynamic_segment_is_an_error(tmp_path):
    data = build(Elf(needed=["liba.so"]))
    with pytest.raises(elffile.ElfError):
        parse(tmp_path, data[: len(data) - 20])


def test_parse_cache_is_keyed_by_inode_and_change(tmp_path):
    path = tmp_path / "obj"
    path.write_bytes(build(Elf(soname="one")))
    assert elffile.load(str(path), os.stat(path)).soname == "one"
    path.write_bytes(build(Elf(soname="two.longer")))
    assert elffile.load(str(path), os.stat(path)).soname == "two.longer"


def test_ldcache_new_format_and_old_prefix():
    entries = [("libz.so.1", "/lib/x86_64-linux-gnu/libz.so.1", 0x303, 0),
               ("libz.so.1", "/lib/i386-linux-gnu/libz.so.1", 3, 0),
               ("libz.so.1", "/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1", 0x303,
                1 << 62)]
    for data in (cache_bytes(entries), cache_bytes(entries, old_prefix=True)):
        cache = ldcache.parse(data)
        found = cache.lookup("libz.so.1", frozenset({1, 0x303}))
        assert [(e.value, e.variant) for e in found] == [
            ("/lib/x86_64-linux-gnu/libz.so.1", False),
            ("/lib/x86_64-linux-gnu/glibc-hwcaps/x86-64-v3/libz.so.1", True)]
        assert [e.value for e in cache.lookup("libz.so.1", frozenset({1, 3}))] == [
            "/lib/i386-linux-gnu/libz.so.1"]


def test_ldcache_of_this_host():
    with open("/etc/ld.so.cache", "rb") as stream:
        cache = ldcache.parse(stream.read())
    assert cache.lookup("libc.so.6", frozenset({1, 0x303}))[0].value.endswith("/libc.so.6")


@pytest.mark.parametrize("data", [b"garbage", b"glibc-ld.so.cache1.1" + bytes(10)])
def test_ldcache_rejects_garbage(data):
    with pytest.raises(ldcache.CacheError):
        ldcache.parse(data)


def test_17_ld_so_conf_grammar(tree):
    tree.text("/etc/ld.so.conf", "include ld.so.conf.d/*.conf\n"
              "/usr/local/lib   # a comment after a path\n"
              "/opt/typed=libc6\n/opt/slash///   \n\n# only a comment\n"
              "include nomatch/*.conf\nrelative/dir\n/usr/local/lib\n")
    tree.text("/etc/ld.so.conf.d/b.conf", "/b1\ninclude ../ld.so.conf\n")  # a cycle
    tree.text("/etc/ld.so.conf.d/a.conf", "/a1\ninclude sub/*.conf\n")  # nested, relative
    tree.text("/etc/ld.so.conf.d/sub/c.conf", "/c1\n")
    tree.text("/etc/ld.so.conf.d/.hidden.conf", "/hidden\n")
    parsed = ldconf.parse(Walker(str(tree.root)))
    assert parsed.dirs == ("/a1", "/c1", "/b1", "/usr/local/lib", "/opt/typed", "/opt/slash")
    assert parsed.warnings == (
        "ld.so.conf include cycle: /etc/ld.so.conf -> /etc/ld.so.conf.d/b.conf -> "
        "/etc/ld.so.conf.d/../ld.so.conf (ignored)",
        "/etc/ld.so.conf:8: relative directory 'relative/dir' ignored")
    assert parsed.files == ("/etc/ld.so.conf", "/etc/ld.so.conf.d/a.conf",
                            "/etc/ld.so.conf.d/sub/c.conf", "/etc/ld.so.conf.d/b.conf")


def test_ld_so_conf_absent(tree):
    assert ldconf.parse(Walker(str(tree.root))) == ldconf.LdConf((), ())


@pytest.mark.parametrize("head, interpreter, argument", [
    (b"#!/bin/sh\n", "/bin/sh", None),
    (b"#!/bin/sh -e\n", "/bin/sh", "-e"),
    (b"#! \t/bin/bash  \n", "/bin/bash", None),
    (b"#!/usr/bin/env python3 -u  \nprint()\n", "/usr/bin/env", "python3 -u"),
    (b"#!/bin/sh\r\n", "/bin/sh\r", None),
    (b"#!/bin/sh", "/bin/sh", None),
])
def test_shebang_as_the_kernel_reads_it(head, interpreter, argument):
    assert scripts.parse(head) == scripts.Shebang(interpreter, argument)


def test_shebang_errors():
    assert scripts.parse(b"\x7fELF") is None
    with pytest.raises(scripts.ShebangError, match="names no interpreter"):
        scripts.parse(b"#!   \n")
    with pytest.raises(scripts.ShebangError, match="longer than"):
        scripts.parse(b"#!/" + b"x" * 300)
    assert scripts.parse(b"#!/bin/sh " + b"x" * 300).interpreter == "/bin/sh"


@pytest.mark.parametrize("argument, program", [
    ("python3", "python3"), ("-S python3 -u", "python3"), ("-i FOO=1 perl", None),
    ("-S FOO=1 perl -w", "perl"), (None, None)])
def test_env_program(argument, program):
    assert scripts.env_program(argument) == program


def test_facts_from_a_loaders_strings(tree):
    tree.lib("/lib64/ld-linux-x86-64.so.2", osabi=3,
             rodata=loader_rodata(DEBIAN_DIRS, "lib/x86_64-linux-gnu", "2.41"))
    walker = Walker(str(tree.root))
    loader = elffile.load(str(tree.host("/lib64/ld-linux-x86-64.so.2")),
                          os.stat(tree.host("/lib64/ld-linux-x86-64.so.2")))
    learnt = facts.learn(walker, "/lib64/ld-linux-x86-64.so.2", loader, loader)
    assert learnt.system_dirs == DEBIAN_DIRS
    assert (learnt.lib, learnt.version, learnt.family) == ("lib/x86_64-linux-gnu", (2, 41), "glibc")
    assert learnt.glibc_hwcaps == ("x86-64-v4", "x86-64-v3", "x86-64-v2")
    assert not learnt.legacy_hwcaps  # removed after 2.36


def test_facts_of_this_hosts_loader():
    walker = Walker("/")
    path = "/lib64/ld-linux-x86-64.so.2"
    walk = walker.resolve(path)
    loader = elffile.load(walker.host(walk.path), os.stat(walk.path))
    learnt = facts.learn(walker, path, loader, loader)
    assert learnt.system_dirs == DEBIAN_DIRS  # this host is Debian 12
    assert (learnt.lib, learnt.version, learnt.soname) == (
        "lib/x86_64-linux-gnu", (2, 36), "ld-linux-x86-64.so.2")
    assert learnt.legacy_hwcaps


def test_musl_path_file_location():
    arch = facts.arch_of(facts.Abi(64, True, 62))
    assert facts._musl_path_file("/lib/ld-musl-x86_64.so.1", arch) == "/etc/ld-musl-x86_64.path"
    assert facts._musl_path_file("/opt/m/lib/ld-musl-x86_64.so.1", arch) == \
        "/opt/m/etc/ld-musl-x86_64.path"


def test_token_expansion(tree):
    tree.lib("/lib64/ld-linux-x86-64.so.2",
             rodata=loader_rodata(DEBIAN_DIRS, "lib/x86_64-linux-gnu"))
    walker = Walker(str(tree.root))
    info = elffile.load(str(tree.host("/lib64/ld-linux-x86-64.so.2")),
                        os.stat(tree.host("/lib64/ld-linux-x86-64.so.2")))
    learnt = facts.learn(walker, "/lib64/ld-linux-x86-64.so.2", info, info)
    texts = [e.text for e in expand_glibc("$ORIGIN/${LIB}/$PLATFORM/x", "/o", learnt)]
    assert texts == [f"/o/lib/x86_64-linux-gnu/{p}/x" for p in ("haswell", "xeon_phi", "x86_64")]
    assert [e.text for e in expand_glibc("/x/$FOO/$ORIGINAL", "/o", learnt)] == [
        "/x/$FOO/$ORIGINAL"]
    assert expand_glibc("$ORIGIN/x", None, learnt) == []
    assert expand_musl("${ORIGIN}/a:$ORIGIN/b", "/o") == "/o/a:/o/b"
    assert expand_musl("$ORIGIN/$LIB", "/o") is None
    assert tidy("/a//b/./c/../d/") == "/a/b/c/../d"


def _patched(field: str, value: int) -> bytes:
    """A valid 64-bit file with one size or offset replaced by VALUE."""
    data = bytearray(build(Elf(interp="/lib/ld.so", needed=["liba.so"],
                               verneed={"liba.so": ["A_1"]})))
    phdr = {"interp": 64 + 56, "dynamic": 64 + 2 * 56}  # after PT_LOAD, 56 bytes each
    if field == "e_phoff":
        struct.pack_into("<Q", data, 32, value)
    elif field in phdr:
        struct.pack_into("<Q", data, phdr[field] + 32, value)  # p_filesz
    else:  # a dynamic tag's value, or the count of the first version need
        dynamic = struct.unpack_from("<Q", data, phdr["dynamic"] + 8)[0]
        tag = {"DT_STRSZ": 10, "vn_cnt": 0x6FFFFFFE}[field]
        at = next(at for at in range(dynamic, len(data), 16)
                  if struct.unpack_from("<q", data, at)[0] == tag)
        if field == "vn_cnt":  # its one entry's vna_next made 0: the same entry, VALUE times
            verneed = struct.unpack_from("<Q", data, at + 8)[0]
            struct.pack_into("<H", data, verneed + 2, value)
            struct.pack_into("<I", data, verneed + 16 + 12, 0)
        else:
            struct.pack_into("<Q", data, at + 8, value)
    return bytes(data)


@pytest.mark.parametrize("field, value", [
    ("interp", 1 << 62), ("dynamic", 1 << 62), ("DT_STRSZ", 1 << 62), ("DT_STRSZ", 1 << 63),
    ("e_phoff", 1 << 63), ("vn_cnt", 0xFFFF)])
def test_sizes_beyond_the_file_are_an_error(tmp_path, field, value):
    """Sizes the file states are checked against its size, before any read
    (they ended in MemoryError or OverflowError, an internal error)."""
    with pytest.raises(elffile.ElfError, match=r"file too short|larger than the file"):
        parse(tmp_path, _patched(field, value))


@pytest.mark.parametrize("count", [6, 12])
def test_ld_so_conf_files_including_each_other_are_read_once(tree, count):
    """Each file includes all the others: cut along the current path only,
    that was count! reads (12 files: hours); each file is now read once."""
    tree.text("/etc/ld.so.conf", "include ld.so.conf.d/*.conf\n")
    for index in range(count):
        tree.text(f"/etc/ld.so.conf.d/{index:02}.conf", f"/lib{index}\ninclude *.conf\n")
    parsed = ldconf.parse(Walker(str(tree.root)))
    assert parsed.dirs == tuple(f"/lib{index}" for index in range(count))
    assert len(parsed.files) == count + 1
    # a cycle is reported where it closes, once per include line at most
    assert 0 < len(parsed.warnings) <= count * count
