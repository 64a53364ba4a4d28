#!/usr/bin/env python3
"""Writes the hand-made seed-* archives of the tar_extract fuzz target into
fuzz/corpus/tar_extract/: a well-formed archive of every allowed entry kind, and the
attacks lca_hostops::archive must refuse or survive (`..` and absolute names, symlink
escapes, paths through symlinks, hardlinks out, device nodes, long names, huge sizes and
times, truncation, gzip). The files are committed; this script says how they were made and
remakes them byte for byte: `python3 fuzz/seeds/tar_seeds.py` from the repository root.

An odd-length input is extracted with AbsoluteSymlinks::Refuse (fuzz/src/tar_checks.rs),
so `odd()` pads an archive with one byte after its end to get that mode."""

import gzip
import io
import os
import tarfile

CORPUS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "corpus", "tar_extract")
ESCAPE = "/tmp/lca-fuzz-tar-escape"
MTIME = 1700000000


def info(name, kind=tarfile.REGTYPE, size=0, mode=0o644, link="", **kw):
    ti = tarfile.TarInfo(name)
    ti.type, ti.size, ti.mode, ti.linkname, ti.mtime = kind, size, mode, link, MTIME
    ti.uid = ti.gid = 0
    ti.uname = ti.gname = "root"
    for k, v in kw.items():
        setattr(ti, k, v)
    return ti


def f(name, data=b"data\n", **kw):
    return info(name, size=len(data), **kw), data


def d(name, mode=0o755):
    return info(name, tarfile.DIRTYPE, mode=mode), None


def sym(name, link):
    return info(name, tarfile.SYMTYPE, mode=0o777, link=link), None


def hard(name, link):
    return info(name, tarfile.LNKTYPE, link=link), None


def archive(*entries, fmt=tarfile.GNU_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if data is not None else None)
    # Without tarfile's padding to 10 KiB records: small seeds keep libFuzzer's max_len low.
    body = buf.getvalue().rstrip(b"\0")
    return body + b"\0" * (-len(body) % 512) + b"\0" * 1024


def odd(data):
    return data + b"\0" if len(data) % 2 == 0 else data


def gz(data):
    return gzip.compress(data, mtime=0)


def write(name, data):
    os.makedirs(CORPUS, exist_ok=True)
    with open(os.path.join(CORPUS, "seed-" + name), "wb") as out:
        out.write(data)


def main():
    plain = archive(
        d("./"), d("etc"), f("etc/hostname", b"node\n"), d("etc/ssh", mode=0o700),
        f("etc/ssh/key", b"secret\n", mode=0o600), f("usr-bin-tool", b"\x7fELF", mode=0o4755),
        sym("etc/localtime", "../usr/share/zoneinfo/UTC"), sym("etc/mtab", "/proc/self/mounts"),
        hard("etc/hostname.bak", "etc/hostname"), (info("run-fifo", tarfile.FIFOTYPE), None),
    )
    write("plain", plain)
    write("plain-pax", archive(f("pax/file", b"pax\n"), sym("pax/l", "file"), fmt=tarfile.PAX_FORMAT))
    write("plain-gz", gz(plain))
    # Above writer::SMALL (512 KiB): streamed by the reader thread; gzip keeps the seed small.
    write("large-file-gz", gz(archive(f("big", b"x" * (513 * 1024)), f("big", b"y" * 9))))
    write("gz-concatenated", gz(archive(f("a", b"1"))[:-1024]) + gz(archive(f("b", b"2"))))
    write("gz-truncated", gz(plain)[:200])
    write("gz-garbage-after", gz(archive(f("a"))) + b"not gzip")

    # Names that leave the target.
    write("dotdot", archive(f("../sentinel/pwned"), f("../../outer/pwned")))
    write("dotdot-inner", archive(d("a"), f("a/../../parent-pwned")))
    write("absolute", archive(f(ESCAPE), f("/etc/lca-fuzz-pwned")))
    write("absolute-dir", archive(d("/tmp/lca-fuzz-tar-escape-dir"), f("ok")))

    # Symlinks that climb out, or that a later entry walks through.
    write("symlink-up", archive(sym("up", ".."), f("up/sentinel/pwned")))
    write("symlink-deep-up", archive(d("a"), d("a/b"), sym("a/b/l", "../../../sentinel")))
    write("symlink-dotdot-after-name", archive(d("a"), sym("a/l", "b/../../..")))
    write("symlink-abs-then-file", archive(sym("l", "/tmp"), f("l/lca-fuzz-tar-escape")))
    write("symlink-abs-refused", odd(archive(sym("l", "/etc/passwd"), f("after"))))
    write("symlink-rel-then-file", archive(d("sub"), sym("l", "sub"), f("l/x")))
    write("symlink-chain", archive(d("a"), sym("a/up", ".."), sym("b", "a/up"), f("b/x")))
    write("symlink-then-dir", archive(sym("etc", "/etc"), d("etc"), f("etc/pwned")))
    write("symlink-replaces-file", archive(f("x"), sym("x", "/etc/shadow"), f("x", b"through?\n")))
    write("symlink-over-dir", archive(d("x"), sym("x", "/")))
    write("symlink-loop", archive(sym("a", "b"), sym("b", "a"), f("c")))
    write("symlink-empty-target", archive(sym("e", "")))

    # Hardlinks out of the target, or through a symlink.
    write("hardlink-passwd", archive(hard("h", "/etc/passwd")))
    write("hardlink-dotdot", archive(hard("h", "../sentinel/canary")))
    write("hardlink-through-symlink", archive(sym("l", "/etc"), hard("h", "l/passwd")))
    write("hardlink-to-symlink", archive(sym("l", "/etc/passwd"), hard("h", "l")))
    write("hardlink-to-dir", archive(d("dir"), hard("h", "dir")))
    write("hardlink-self", archive(f("x"), hard("x", "x")))
    write("hardlink-missing", archive(hard("h", "not/there")))

    # Entry kinds that are refused, or that replace one another.
    write("devices", archive((info("null", tarfile.CHRTYPE, devmajor=1, devminor=3), None),
                             (info("sda", tarfile.BLKTYPE, devmajor=8, devminor=0), None)))
    write("sparse", archive((info("s", tarfile.GNUTYPE_SPARSE), None)))
    write("contiguous", archive((info("c", tarfile.CONTTYPE, size=3), b"abc")))
    write("dir-then-file", archive(d("x"), f("x")))
    write("file-then-dir", archive(f("x"), d("x"), f("x/y")))
    write("file-twice", archive(f("x", b"one"), f("x", b"two" * 2000), f("x", b"three")))
    write("fifo-then-file", archive((info("p", tarfile.FIFOTYPE), None), f("p")))
    write("mode-000-dir", archive(d("locked", mode=0), f("locked/inner"), d("locked/sub", mode=0o111)))

    # Sizes, names and numbers at the limits.
    write("long-name-gnu", archive(f("n" * 300), f("/".join(["d"] * 120) + "/leaf")))
    write("long-name-pax", archive(f("p" * 5000, b"x"), sym("s" * 200, "t" * 3000), fmt=tarfile.PAX_FORMAT))
    write("name-too-long-for-fs", archive(f("x" * 300 + "/y"), f("y" * 256)))
    huge = info("huge", size=8 << 30).tobuf(tarfile.GNU_FORMAT)
    write("huge-size", huge + b"only a few bytes")
    write("huge-size-small-file", info("small", size=100000).tobuf(tarfile.GNU_FORMAT) + b"abc")
    write("huge-mtime", archive(f("future", mtime=(1 << 64) - 1), (info("dir", tarfile.DIRTYPE, mtime=1 << 70), None)))
    write("huge-ids", archive(f("ids", uid=(1 << 40), gid=(1 << 56) - 1)))
    write("pax-xattrs", archive(
        f("x", b"x", pax_headers={"SCHILY.xattr.user.lca": "v", "SCHILY.xattr.security.selinux":
                                  "system_u:object_r:etc_t:s0", "RHT.security.selinux": "x"}),
        (info("l", tarfile.SYMTYPE, link="x", pax_headers={"SCHILY.xattr.trusted.lca": "v"}), None),
        fmt=tarfile.PAX_FORMAT))
    write("pax-path-escape", archive(f("safe-name", pax_headers={"path": "../pax-pwned"}), fmt=tarfile.PAX_FORMAT))
    write("pax-linkpath-escape", archive((info("l", tarfile.SYMTYPE, link="ok",
                                               pax_headers={"linkpath": "../../.."}), None), fmt=tarfile.PAX_FORMAT))
    write("truncated-header", plain[:700])
    write("truncated-data", plain[:1100])
    write("zero-block-then-more", b"\0" * 512 + plain)
    write("empty", b"")
    write("bad-checksum", plain[:148] + b"0000000\0" + plain[156:2048])


if __name__ == "__main__":
    main()
