//! Reading the files ecs-dns is given (configuration, TSIG keys, inventory,
//! state): regular files only, never more than a documented cap. A path to
//! `/dev/zero`, a FIFO or a folder is an error naming the file, not a hang
//! or an endless read, and a file over its cap is an error naming the cap.
//!
//! These reads block: callers on the async runtime wrap them in
//! `spawn_blocking` or `block_in_place`.

use std::io::Read;
use std::path::Path;

/// The configuration file.
pub const CONFIG_CAP: u64 = 1 << 20;
/// The TSIG key file.
pub const KEY_FILE_CAP: u64 = 64 << 10;
/// The inventory file and the state file: about five times the inventory
/// of 100 000 tasks.
pub const INVENTORY_CAP: u64 = 512 << 20;

/// Why a file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("not a regular file")]
    NotRegular,
    #[error("larger than {cap} bytes, the most ecs-dns reads from this file")]
    TooLarge { cap: u64 },
    #[error("not UTF-8 text")]
    NotText,
}

impl ReadError {
    /// Whether the file does not exist (for callers that allow that).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == std::io::ErrorKind::NotFound)
    }
}

/// Reads the regular file at `path`, at most `cap` bytes.
pub fn read(path: &Path, cap: u64) -> Result<Vec<u8>, ReadError> {
    let file = std::fs::File::open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(ReadError::NotRegular);
    }
    if metadata.len() > cap {
        return Err(ReadError::TooLarge { cap });
    }
    // The file may grow while it is read: never more than the cap.
    let mut bytes = Vec::with_capacity(usize::try_from(metadata.len()).unwrap_or(0));
    file.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge { cap });
    }
    Ok(bytes)
}

/// [`read`], as UTF-8 text.
pub fn read_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    String::from_utf8(read(path, cap)?).map_err(|_| ReadError::NotText)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_within_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f");
        std::fs::write(&file, "0123456789").unwrap();
        assert_eq!(read_text(&file, 10).unwrap(), "0123456789");
        assert!(matches!(
            read_text(&file, 9),
            Err(ReadError::TooLarge { cap: 9 })
        ));
        assert!(matches!(read(dir.path(), 10), Err(ReadError::NotRegular)));
        assert!(matches!(
            read(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular)
        ));
        assert!(
            read(&dir.path().join("missing"), 10)
                .unwrap_err()
                .is_not_found()
        );
        std::fs::write(&file, [0xff, 0xfe]).unwrap();
        assert!(matches!(read_text(&file, 10), Err(ReadError::NotText)));
    }
}
