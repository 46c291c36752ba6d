//! Reading and opening files of the manifest directory defensively: never through a symlink in
//! the file's place, never blocking on a FIFO, never more than a bound.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest status file read (a status with full hardware details is a few KiB).
pub const MAX_STATUS_BYTES: u64 = 4 * 1024 * 1024;

/// Opens `path` with `options` only if it is a regular file: a symlink in its place is refused
/// (`O_NOFOLLOW`), a FIFO does not block (`O_NONBLOCK`).
pub fn open_regular(path: &Path, options: &mut OpenOptions) -> std::io::Result<File> {
    let file = options.custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other(format!("{}: not a regular file", path.display())));
    }
    Ok(file)
}

/// The text of a regular file, refused when it is over `max` bytes.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    let file = open_regular(path, OpenOptions::new().read(true))?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(std::io::Error::other(format!("over the {max}-byte limit; not read")));
    }
    String::from_utf8(bytes).map_err(std::io::Error::other)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_files_symlinks_and_fifos_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, "x".repeat(11)).unwrap();
        assert!(read_text(&big, 10).is_err());
        assert_eq!(read_text(&big, 11).unwrap().len(), 11);
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&big, &link).unwrap();
        assert!(read_text(&link, 100).is_err());
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_text(&fifo, 100).is_err());
    }
}
