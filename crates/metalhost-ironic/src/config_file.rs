//! Reading the files that configure the Ironic client (its CA, the basic-auth user and password
//! files, `--ironic-password-file`) with a bound: only a regular file (links followed, as
//! Kubernetes mounts Secrets through them) of at most [`MAX_CONFIG_FILE_BYTES`]. `/dev/zero` or
//! a FIFO named by mistake is refused at once instead of filling memory or hanging.

use std::fs::OpenOptions;
use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The largest configuration file read (a CA bundle of a few hundred certificates fits).
pub const MAX_CONFIG_FILE_BYTES: u64 = 1024 * 1024;

/// The whole of a regular file of at most [`MAX_CONFIG_FILE_BYTES`]; anything else is an error
/// naming why (a missing file is `NotFound`, as for `std::fs::read`).
pub fn read_config_file(path: &Path) -> std::io::Result<Vec<u8>> {
    // non-blocking: opening a FIFO must not wait for a writer
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC).open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if metadata.len() > MAX_CONFIG_FILE_BYTES {
        return Err(too_large());
    }
    let mut text = Vec::new();
    file.take(MAX_CONFIG_FILE_BYTES + 1).read_to_end(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_FILE_BYTES {
        return Err(too_large());
    }
    Ok(text)
}

fn too_large() -> std::io::Error {
    std::io::Error::other(format!("larger than {MAX_CONFIG_FILE_BYTES} bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_bounded_regular_file_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\n").unwrap();
        assert_eq!(read_config_file(&file).unwrap(), b"s3cret\n");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert_eq!(read_config_file(&link).unwrap(), b"s3cret\n", "links are followed (Secret mounts)");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; MAX_CONFIG_FILE_BYTES as usize + 1]).unwrap();
        assert!(read_config_file(&big).unwrap_err().to_string().contains("larger than"));
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        assert!(read_config_file(&fifo).unwrap_err().to_string().contains("not a regular file"));
        assert!(
            read_config_file(Path::new("/dev/zero")).unwrap_err().to_string().contains("not a regular file")
        );
        assert_eq!(
            read_config_file(&dir.path().join("none")).unwrap_err().kind(),
            std::io::ErrorKind::NotFound
        );
    }
}
