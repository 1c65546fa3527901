//! The data directory's permissions (issue 18 item 4): it holds the database (signing keys,
//! secret hashes, every tenant's data; the SQLite WAL holds recent pages in clear) and the
//! TLS private key, so only the server's own user may read it: the directory is `0700` and
//! every file in it `0600`, whatever the process umask.
//!
//! The umask is not changed: that needs `unsafe` (`libc::umask`), which the workspace
//! forbids, or a new dependency for one call. Instead the files are created with their
//! mode: the directory with `0700`, the SQLite file is made empty with `0600` before SQLite
//! opens it, and SQLite gives its `-wal` and `-shm` files the mode of the database file
//! (`os_unix.c`, `findCreateFileMode`: "the permissions on the corresponding database
//! file"), and `tls.rs` writes its files with `0600`. A data dir made by an earlier version
//! is put right at start, with a warning.

use std::path::Path;

/// Mode of the data directory and the directories in it.
#[cfg(unix)]
const DIR_MODE: u32 = 0o700;
/// Mode of every file the server writes there.
#[cfg(unix)]
pub const FILE_MODE: u32 = 0o600;

/// Creates `dir` (mode `0700`) unless it exists, and tightens what is there already.
///
/// # Errors
/// The directory cannot be made, or a mode cannot be set.
pub fn prepare(dir: &Path) -> Result<(), String> {
    prepare_dir(dir)?;
    #[cfg(unix)]
    tighten(dir)?;
    Ok(())
}

/// Creates `dir` with mode `0700` (and its parents) unless it exists.
///
/// # Errors
/// The directory cannot be made.
pub fn prepare_dir(dir: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(DIR_MODE)
            .create(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))
}

/// Creates the SQLite database file empty with mode `0600` unless it exists, so SQLite
/// (which creates files with `0644` less the umask) opens a private file and gives its
/// `-wal`/`-shm` files the same mode.
///
/// # Errors
/// The file cannot be made.
pub fn create_private_file(path: &Path) -> Result<(), String> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options.open(path).map(drop).map_err(|e| format!("cannot create {}: {e}", path.display()))
}

/// Writes `text` to a new file of mode `0600` (replacing any file there).
///
/// # Errors
/// The file cannot be written.
pub fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write as _;
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    options
        .open(path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// The files the server writes in the data dir (the SQLite database and the files SQLite
/// makes next to it) and in its `tls/` directory. Only these are changed: a data dir may
/// be a directory that holds other things too.
#[cfg(unix)]
const OWN_FILES: [&str; 4] =
    ["enrollgraph.sqlite", "enrollgraph.sqlite-wal", "enrollgraph.sqlite-shm", "enrollgraph.sqlite-journal"];
#[cfg(unix)]
const OWN_TLS_FILES: [&str; 3] = ["ca.pem", "server.pem", "server-key.pem"];

/// Sets the data dir and its `tls/` to `0700` and the server's files in them to `0600`,
/// warning for each one that was more open. A data dir the process may not change (not its
/// own) is only warned about: the files in it are still made private.
#[cfg(unix)]
fn tighten(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt as _;
    let fix = |path: &Path, mode: u32| -> Result<(), String> {
        // Symbolic links are left alone: their targets are not the server's to change.
        let Ok(meta) = std::fs::symlink_metadata(path) else { return Ok(()) };
        if meta.file_type().is_symlink() {
            return Ok(());
        }
        let old = meta.permissions().mode() & 0o777;
        if old & !mode != 0 {
            tracing::warn!(path = %path.display(), "was open to other users (mode {old:o}); setting {mode:o}");
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
        }
        Ok(())
    };
    if let Err(e) = fix(dir, DIR_MODE) {
        tracing::warn!("{e}: other users may list the data directory");
    }
    for f in OWN_FILES {
        fix(&dir.join(f), FILE_MODE)?;
    }
    let tls = dir.join("tls");
    fix(&tls, DIR_MODE)?;
    for f in OWN_TLS_FILES {
        fix(&tls.join(f), FILE_MODE)?;
    }
    Ok(())
}
