//! File-system helpers shared by the PKI and kubeconfig writers: atomic writes with exact
//! permissions, private directories.

use std::{
    fs::{self, File, OpenOptions, Permissions},
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

/// Permissions of files holding private keys or credentials.
pub(crate) const SECRET_MODE: u32 = 0o600;
/// Permissions of public files (certificates).
pub(crate) const PUBLIC_MODE: u32 = 0o644;

/// Writes `contents` to `path` so that readers see either the old file or the complete new one:
/// the bytes go to a fresh temporary file in the same directory (created exclusively, never
/// through an existing file or symlink), which is fsynced, given `mode` and renamed over `path`.
pub(crate) fn write_atomic(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?
        .to_string_lossy();

    let (tmp_path, mut file) = create_temp(dir, &file_name, mode)?;
    let result = (|| {
        file.write_all(contents)?;
        // The creation mode is filtered by the umask; set the exact bits explicitly.
        file.set_permissions(Permissions::from_mode(mode))?;
        file.sync_all()?;
        fs::rename(&tmp_path, path)?;
        // Make the rename itself durable.
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp_path);
    }
    result
}

/// Creates a new temporary file next to the target, retrying on the unlikely name clash.
fn create_temp(dir: &Path, file_name: &str, mode: u32) -> io::Result<(std::path::PathBuf, File)> {
    let rng = ring::rand::SystemRandom::new();
    let mut last_err = None;
    for _ in 0..8 {
        let mut suffix = [0u8; 8];
        ring::rand::SecureRandom::fill(&rng, &mut suffix)
            .map_err(|_| io::Error::other("no randomness for a temporary file name"))?;
        let suffix: String = suffix.iter().map(|b| format!("{b:02x}")).collect();
        let tmp_path = dir.join(format!(".{file_name}.{suffix}.tmp"));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp_path)
        {
            Ok(file) => return Ok((tmp_path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last_err = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last_err.unwrap_or_else(|| io::Error::other("cannot create a temporary file")))
}

/// Creates `path` (and its parents) if missing and makes it accessible to its owner only.
pub(crate) fn create_private_dir(path: &Path) -> io::Result<()> {
    fs::create_dir_all(path)?;
    fs::set_permissions(path, Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_the_file_with_exact_permissions_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret.key");
        write_atomic(&path, b"one", PUBLIC_MODE).expect("first write");
        write_atomic(&path, b"two", SECRET_MODE).expect("second write");
        assert_eq!(fs::read(&path).expect("read"), b"two");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, SECRET_MODE);
        let names: Vec<_> = fs::read_dir(dir.path())
            .expect("read_dir")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("secret.key")]);
    }

    #[test]
    fn private_dirs_are_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/tls");
        create_private_dir(&path).expect("create");
        let mode = fs::metadata(&path).expect("metadata").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }
}
