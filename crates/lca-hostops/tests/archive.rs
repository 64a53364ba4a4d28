//! Safe extraction against hand-built archives, benign and malicious. Malicious member names
//! are written into the raw header bytes, because the `tar` builder refuses to create them.

#![allow(clippy::unwrap_used)]

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use lca_hostops::archive::{self, AbsoluteSymlinks, Error, Options};
use tar::{EntryType, Header};

fn raw(
    b: &mut tar::Builder<Vec<u8>>,
    name: &str,
    kind: EntryType,
    data: &[u8],
    link: Option<&str>,
    mode: u32,
) {
    let mut h = Header::new_gnu();
    {
        let old = h.as_old_mut();
        old.name[..name.len()].copy_from_slice(name.as_bytes());
        if let Some(l) = link {
            old.linkname[..l.len()].copy_from_slice(l.as_bytes());
        }
    }
    h.set_entry_type(kind);
    h.set_size(data.len() as u64);
    h.set_mode(mode);
    h.set_mtime(1_700_000_000);
    h.set_cksum();
    b.append(&h, data).unwrap();
}

fn tarball(f: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    f(&mut b);
    b.into_inner().unwrap()
}

fn gz(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// A scratch dir with `target/` to extract into and `outside/` that must stay empty.
fn scratch() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("target");
    let outside = t.path().join("outside");
    fs::create_dir(&target).unwrap();
    fs::create_dir(&outside).unwrap();
    (t, target, outside)
}

fn refused(data: Vec<u8>, target: &Path, opts: &Options) -> (String, String) {
    match archive::extract_tar(&data[..], target, opts) {
        Err(Error::Refused { entry, reason }) => (entry, reason),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn empty(dir: &Path) -> bool {
    fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn benign_tree_keeps_content_modes_links_and_xattrs() {
    let (_t, target, _) = scratch();
    let src = tempfile::tempdir().unwrap();
    let s = src.path();
    fs::create_dir_all(s.join("etc/ssh")).unwrap();
    fs::write(s.join("etc/ssh/key"), b"secret").unwrap();
    fs::set_permissions(s.join("etc/ssh/key"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::write(s.join("etc/tool"), b"#!/bin/sh\n").unwrap();
    fs::set_permissions(s.join("etc/tool"), fs::Permissions::from_mode(0o4755)).unwrap();
    fs::set_permissions(s.join("etc/ssh"), fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink("ssh/key", s.join("etc/rel")).unwrap();
    std::os::unix::fs::symlink("/usr/lib/systemd/system/x.service", s.join("etc/abs")).unwrap();
    let user_xattr = xattr::set(s.join("etc/tool"), "user.lca", b"v").is_ok();

    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    b.append_dir_all("etc", s.join("etc")).unwrap();
    raw(&mut b, "etc/tool2", EntryType::Link, b"", Some("etc/tool"), 0o755);
    if user_xattr {
        b.append_pax_extensions([("SCHILY.xattr.user.lca", &b"v"[..])])
            .unwrap();
        b.append_path_with_name(s.join("etc/tool"), "etc/tool3").unwrap();
    }
    let data = gz(&b.into_inner().unwrap());
    let stats = archive::extract_tar_gz(std::io::Cursor::new(data), &target, &Options::default()).unwrap();
    assert!(stats.entries >= 6);

    let t = target.join("etc");
    assert_eq!(fs::read(t.join("ssh/key")).unwrap(), b"secret");
    assert_eq!(fs::metadata(t.join("ssh/key")).unwrap().mode() & 0o7777, 0o600);
    assert_eq!(fs::metadata(t.join("ssh")).unwrap().mode() & 0o7777, 0o700);
    assert_eq!(fs::metadata(t.join("tool")).unwrap().mode() & 0o7777, 0o4755);
    assert_eq!(fs::read_link(t.join("rel")).unwrap(), Path::new("ssh/key"));
    assert_eq!(
        fs::read_link(t.join("abs")).unwrap(),
        Path::new("/usr/lib/systemd/system/x.service")
    );
    assert_eq!(
        fs::metadata(t.join("tool")).unwrap().ino(),
        fs::metadata(t.join("tool2")).unwrap().ino()
    );
    assert_eq!(
        fs::metadata(t.join("tool")).unwrap().mtime(),
        fs::metadata(s.join("etc/tool")).unwrap().mtime()
    );
    if user_xattr {
        assert_eq!(
            xattr::get(t.join("tool3"), "user.lca").unwrap().as_deref(),
            Some(&b"v"[..])
        );
    }
}

#[test]
fn absolute_member_is_refused_with_its_name() {
    let (_t, target, outside) = scratch();
    let evil = outside.join("evil");
    let data = tarball(|b| raw(b, evil.to_str().unwrap(), EntryType::Regular, b"x", None, 0o644));
    let (entry, reason) = refused(data, &target, &Options::default());
    assert_eq!(entry, evil.to_str().unwrap());
    assert_eq!(reason, "absolute path");
    assert!(empty(&outside));
}

#[test]
fn dotdot_member_is_refused() {
    let (_t, target, outside) = scratch();
    let data = tarball(|b| raw(b, "a/../../outside/evil", EntryType::Regular, b"x", None, 0o644));
    let (entry, reason) = refused(data, &target, &Options::default());
    assert_eq!(entry, "a/../../outside/evil");
    assert!(reason.contains(".."), "{reason}");
    assert!(empty(&outside));
}

#[test]
fn escaping_relative_symlink_is_refused() {
    let (_t, target, outside) = scratch();
    let data = tarball(|b| {
        raw(
            b,
            "etc/link",
            EntryType::Symlink,
            b"",
            Some("../../outside"),
            0o777,
        )
    });
    let (entry, reason) = refused(data, &target, &Options::default());
    assert_eq!(entry, "etc/link");
    assert!(reason.contains("escapes"), "{reason}");
    assert!(!target.join("etc/link").exists());
    assert!(empty(&outside));
}

#[test]
fn dotdot_after_a_name_in_symlink_target_is_refused() {
    let (_t, target, _) = scratch();
    let data = tarball(|b| raw(b, "t", EntryType::Symlink, b"", Some("s/d/../.."), 0o777));
    let (_, reason) = refused(data, &target, &Options::default());
    assert!(reason.contains("after a name"), "{reason}");
}

#[test]
fn writing_through_a_symlink_is_refused() {
    let (_t, target, outside) = scratch();
    let data = tarball(|b| {
        raw(
            b,
            "d",
            EntryType::Symlink,
            b"",
            Some(outside.to_str().unwrap()),
            0o777,
        );
        raw(b, "d/evil", EntryType::Regular, b"x", None, 0o644);
    });
    let (entry, reason) = refused(data, &target, &Options::default());
    assert_eq!(entry, "d/evil");
    assert!(reason.contains("passes through the symlink d"), "{reason}");
    assert!(empty(&outside));
}

#[test]
fn absolute_symlink_is_refused_when_asked() {
    let (_t, target, _) = scratch();
    let data = tarball(|b| raw(b, "l", EntryType::Symlink, b"", Some("/etc/passwd"), 0o777));
    let opts = Options {
        absolute_symlinks: AbsoluteSymlinks::Refuse,
        ..Options::default()
    };
    let (_, reason) = refused(data, &target, &opts);
    assert!(reason.contains("absolute symlink"), "{reason}");
}

#[test]
fn escaping_hardlinks_are_refused() {
    let (_t, target, outside) = scratch();
    fs::write(outside.join("victim"), b"v").unwrap();
    for link in ["/etc/passwd", "../outside/victim"] {
        let data = tarball(|b| raw(b, "h", EntryType::Link, b"", Some(link), 0o644));
        let (entry, reason) = refused(data, &target, &Options::default());
        assert_eq!(entry, "h");
        assert!(reason.starts_with("hardlink target"), "{reason}");
    }
    // A hardlink to a symlink that points outside would alias the outside file.
    let data = tarball(|b| {
        raw(
            b,
            "s",
            EntryType::Symlink,
            b"",
            Some(outside.join("victim").to_str().unwrap()),
            0o777,
        );
        raw(b, "h", EntryType::Link, b"", Some("s"), 0o644);
    });
    let (_, reason) = refused(data, &target, &Options::default());
    assert!(reason.contains("not a regular file"), "{reason}");
    assert_eq!(fs::metadata(outside.join("victim")).unwrap().nlink(), 1);
}

#[test]
fn device_nodes_are_refused() {
    let (_t, target, _) = scratch();
    for kind in [EntryType::Char, EntryType::Block] {
        let data = tarball(|b| raw(b, "dev/sda", kind, b"", None, 0o660));
        let (entry, reason) = refused(data, &target, &Options::default());
        assert_eq!(
            (entry.as_str(), reason.as_str()),
            ("dev/sda", "device nodes are not allowed")
        );
    }
}

#[test]
fn truncated_gzip_leaves_nothing_behind() {
    let t = tempfile::tempdir().unwrap();
    let body = vec![7u8; 3 << 20];
    let data = gz(&tarball(|b| {
        raw(b, "big", EntryType::Regular, &body, None, 0o644)
    }));
    let file = t.path().join("a.tgz");
    fs::write(&file, &data[..data.len() / 2]).unwrap();
    let target = t.path().join("out");
    let err = archive::extract_file_atomically(&file, &target, &Options::default()).unwrap_err();
    assert!(matches!(err, Error::Read { .. }), "{err:?}");
    assert!(err.to_string().contains("a.tgz"), "{err}");
    assert!(err.is_bad_archive());
    let left: Vec<_> = fs::read_dir(t.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("a.tgz")]);
}

#[test]
fn refused_archive_keeps_the_previous_target() {
    let t = tempfile::tempdir().unwrap();
    let target = t.path().join("out");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("old"), b"old").unwrap();
    let file = t.path().join("bad.tar");
    fs::write(
        &file,
        tarball(|b| {
            raw(b, "fine", EntryType::Regular, b"ok", None, 0o644);
            raw(b, "../x", EntryType::Regular, b"x", None, 0o644);
        }),
    )
    .unwrap();
    assert!(archive::extract_file_atomically(&file, &target, &Options::default()).is_err());
    assert_eq!(fs::read(target.join("old")).unwrap(), b"old");
    assert!(!target.join("fine").exists());
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2);
}

#[test]
fn concatenated_gzip_members_replace_the_target_atomically() {
    let t = tempfile::tempdir().unwrap();
    let tar = tarball(|b| {
        raw(b, "a/one", EntryType::Regular, &[1u8; 5000], None, 0o644);
        raw(b, "a/two", EntryType::Regular, b"two", None, 0o600);
    });
    let (head, tail) = tar.split_at(3000);
    let mut data = gz(head);
    data.extend(gz(tail));
    let file = t.path().join("m.tgz");
    fs::write(&file, data).unwrap();
    let target = t.path().join("out");
    fs::create_dir(&target).unwrap();
    fs::write(target.join("stale"), b"s").unwrap();
    archive::extract_file_atomically(&file, &target, &Options::default()).unwrap();
    assert_eq!(fs::read(target.join("a/one")).unwrap(), vec![1u8; 5000]);
    assert_eq!(fs::read(target.join("a/two")).unwrap(), b"two");
    assert!(!target.join("stale").exists());
    assert_eq!(fs::read_dir(t.path()).unwrap().count(), 2);
}

/// Small files are written by background threads; names they may still be creating must
/// behave exactly as in a sequential extraction.
#[test]
fn queued_small_files_keep_archive_order() {
    let (_t, target, _) = scratch();
    fs::write(target.join("old"), b"before").unwrap();
    let data = tarball(|b| {
        raw(b, "a", EntryType::Regular, b"first", None, 0o644);
        raw(b, "a", EntryType::Regular, b"second", None, 0o600);
        raw(b, "old", EntryType::Regular, b"after", None, 0o644);
        raw(b, "d", EntryType::Regular, b"linked", None, 0o640);
        raw(b, "e", EntryType::Link, b"", Some("d"), 0o640);
        raw(b, "f", EntryType::Regular, b"file", None, 0o644);
        raw(b, "f", EntryType::Symlink, b"", Some("a"), 0o777);
        for i in 0..200 {
            raw(b, &format!("many/{i}"), EntryType::Regular, b"x", None, 0o444);
        }
    });
    let stats = archive::extract_tar(&data[..], &target, &Options::default()).unwrap();
    assert_eq!(stats.entries, 207);
    assert_eq!(fs::read(target.join("a")).unwrap(), b"second");
    assert_eq!(fs::metadata(target.join("a")).unwrap().mode() & 0o777, 0o600);
    assert_eq!(fs::read(target.join("old")).unwrap(), b"after");
    let (d, e) = (
        fs::metadata(target.join("d")).unwrap(),
        fs::metadata(target.join("e")).unwrap(),
    );
    assert_eq!((d.ino(), d.nlink()), (e.ino(), 2));
    assert_eq!(fs::read_link(target.join("f")).unwrap(), Path::new("a"));
    assert_eq!(fs::read_dir(target.join("many")).unwrap().count(), 200);
    assert_eq!(
        fs::metadata(target.join("many/199")).unwrap().mtime(),
        1_700_000_000
    );

    // A queued file used as a parent, or replaced by a directory, is refused.
    for second in ["b/c", "b"] {
        let (_t, target, _) = scratch();
        let kind = if second == "b" {
            EntryType::Directory
        } else {
            EntryType::Regular
        };
        let data = tarball(|b| {
            raw(b, "b", EntryType::Regular, b"file", None, 0o644);
            raw(b, second, kind, b"", None, 0o755);
        });
        let (entry, reason) = refused(data, &target, &Options::default());
        assert_eq!(entry, second);
        assert!(
            reason.contains("not a directory") || reason.contains("non-directory"),
            "{reason}"
        );
    }
    // A file over a directory that existed before is refused by the writer thread.
    let (_t, target, _) = scratch();
    fs::create_dir(target.join("dir")).unwrap();
    let data = tarball(|b| raw(b, "dir", EntryType::Regular, b"x", None, 0o644));
    let (entry, reason) = refused(data, &target, &Options::default());
    assert_eq!(
        (entry.as_str(), reason.as_str()),
        ("dir", "a non-directory would replace a directory")
    );
}
