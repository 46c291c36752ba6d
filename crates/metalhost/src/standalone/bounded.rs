//! Every file of the manifest directory is opened here, defensively: manifests, status files and
//! the event log. Only regular files (FIFOs, devices and sockets are refused, also behind a
//! symlink; a FIFO never blocks the opener), reads bounded whatever the file claims, and no
//! symlink followed where metalhost writes. Status files are written by `store` through a fresh
//! temporary file and a rename, never through a path that could be a planted link.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Whether [`read_bounded`] may follow a symlink at the path itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Links {
    /// Follow it (manifests may be symlinks, as in a mounted ConfigMap); the target must still be
    /// a regular file.
    Follow,
    /// Refuse it (status files are written by metalhost as regular files, never as links).
    Refuse,
}

/// Reads a regular file of at most `limit` bytes as UTF-8. The file is opened without blocking
/// (a FIFO cannot hang the caller) and checked with fstat on the open descriptor (no race between
/// the check and the read): FIFOs, devices, sockets and directories are refused, and the read
/// stops after `limit + 1` bytes, so a file that grows after the check or lies about its size is
/// refused too.
pub fn read_bounded(path: &Path, limit: u64, links: Links) -> Result<String, String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY;
    if links == Links::Refuse {
        flags |= libc::O_NOFOLLOW;
    }
    let file = std::fs::OpenOptions::new().read(true).custom_flags(flags).open(path).map_err(|e| {
        if links == Links::Refuse && e.raw_os_error() == Some(libc::ELOOP) {
            "is a symbolic link; not read".to_string()
        } else {
            e.to_string()
        }
    })?;
    let meta = file.metadata().map_err(|e| e.to_string())?;
    if !meta.file_type().is_file() {
        return Err(format!("not a regular file ({}); not read", kind_of(&meta.file_type())));
    }
    if meta.len() > limit {
        return Err(format!("{} bytes is over the {limit}-byte limit; not read", meta.len()));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(limit + 1).read_to_end(&mut bytes).map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("over the {limit}-byte limit; not read"));
    }
    String::from_utf8(bytes).map_err(|e| format!("not UTF-8 text: {e}"))
}

fn kind_of(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a plain file"
    }
}

/// Opens `path` with `options` only if it is a regular file: a symlink in its place is refused
/// (`O_NOFOLLOW`), a FIFO does not block (`O_NONBLOCK`).
pub fn open_regular(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    let file = options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!("{}: not a regular file", path.display())));
    }
    Ok(file)
}

/// Replaces `path` (a file of `dir`) with `parts` atomically: readers see the old file or the new
/// one, never half. The temporary file is created new (O_EXCL, random name `.NAME.…tmp`) in the
/// same directory, so a symlink planted under any name is never followed; file and directory are
/// synced before and after the rename, which replaces the file itself, never what a symlink there
/// points to.
pub fn replace_atomically(dir: &Path, path: &Path, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::Write;
    let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{file_name}."))
        .suffix(".tmp")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
        .tempfile_in(dir)?;
    for part in parts {
        tmp.write_all(part)?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symlinks_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "x").unwrap();
        assert!(open_regular(&file, OpenOptions::new().read(true)).is_ok());
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(open_regular(&link, OpenOptions::new().read(true)).is_err());
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(open_regular(&fifo, OpenOptions::new().read(true)).is_err());
    }
}
