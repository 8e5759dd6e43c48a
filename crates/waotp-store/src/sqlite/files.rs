//! The database's files are waotp's alone: they hold callback secrets, per-app WhatsApp
//! tokens, inbox texts with codes and numbers. The folder is made 0700 and the files 0600;
//! ones found looser (made by an older waotp, or copied in) are tightened at start, with a
//! warning. SQLite makes its `-wal` and `-shm` files with the database file's mode, so a
//! database created 0600 keeps them 0600 too.

use std::io;
use std::path::Path;

/// The server secret's key file waotp makes beside the database.
pub const SERVER_KEY_FILE: &str = "server.key";
/// The admin token's file waotp makes beside the database (first start on loopback).
pub const ADMIN_TOKEN_FILE: &str = "admin.token";
/// Files waotp keeps beside the database, besides the database's own.
const OWN_FILES: &[&str] = &[SERVER_KEY_FILE, ADMIN_TOKEN_FILE];

/// Makes `dir` mode 0700 when it is missing (missing parents get the usual mode), or
/// tightens it if it exists and is open to others, when it is waotp's own folder: not sticky
/// (never `/tmp`), and holding waotp's files and nothing else — the database `db_name` with
/// its `-wal`, `-shm` and `-journal`, `server.key`, `admin.token` and their temporary files
/// (an empty folder is not known to be waotp's). Any other folder (the current directory, a
/// shared one) is left, with a warning; so is one whose mode this user may not change.
pub fn prepare_folder(dir: &Path, db_name: &str) -> io::Result<()> {
    if dir.as_os_str().is_empty() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        if !dir.exists() {
            if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent)?;
            }
            return match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                // Made meanwhile by another process starting at the same time.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                made => made,
            };
        }
        let mode = std::fs::metadata(dir)?.permissions().mode() & 0o7777;
        if mode & 0o077 == 0 {
            return Ok(());
        }
        let mut entries = std::fs::read_dir(dir)?.filter_map(|e| e.ok()).peekable();
        let holds_something = entries.peek().is_some();
        let only_waotps = entries.all(|entry| {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            name.strip_prefix(db_name).is_some_and(|rest| ["", "-wal", "-shm", "-journal"].contains(&rest))
                || OWN_FILES.contains(&name.as_ref())
                || (name.starts_with('.') && name.ends_with(".tmp"))
        });
        let sticky = mode & 0o1000 != 0;
        let tightened = holds_something && only_waotps && !sticky && {
            match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                Ok(()) => true,
                Err(e) => {
                    tracing::warn!(folder = %dir.display(), error = %e, "cannot tighten the data folder's mode");
                    false
                }
            }
        };
        if tightened {
            tracing::warn!(
                folder = %dir.display(),
                was = format!("{mode:o}"),
                "the data folder was open to other users: tightened to 0700"
            );
        } else {
            tracing::warn!(
                folder = %dir.display(),
                mode = format!("{mode:o}"),
                "the database's folder is open to other users and waotp leaves its mode (it is shared, sticky, \
                 or not waotp's to change); put the database in a folder of its own (mode 0700)"
            );
        }
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)?;
    Ok(())
}

/// Makes the database file 0600 before SQLite opens it (an empty file is a new database to
/// SQLite), and tightens the database, its `-wal`, `-shm` and `-journal`, and waotp's key
/// files beside it if they exist and are open to others.
pub fn prepare_files(db: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        if let Err(e) = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(db) {
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        let dir = db.parent().unwrap_or(Path::new(""));
        let beside = OWN_FILES.iter().map(|name| dir.join(name));
        let own = ["", "-wal", "-shm", "-journal"].iter().map(|suffix| {
            let mut name = db.as_os_str().to_owned();
            name.push(suffix);
            std::path::PathBuf::from(name)
        });
        for file in own.chain(beside) {
            let file = file.as_path();
            // Not through a symlink (a mounted secret, a file elsewhere): only waotp's own files.
            let Ok(meta) = std::fs::symlink_metadata(file) else { continue };
            let mode = meta.permissions().mode() & 0o777;
            if meta.is_file() && mode & 0o077 != 0 {
                match std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)) {
                    Ok(()) => tracing::warn!(
                        file = %file.display(),
                        was = format!("{mode:o}"),
                        "a database file was open to other users: tightened to 0600"
                    ),
                    Err(e) => tracing::warn!(
                        file = %file.display(),
                        error = %e,
                        "a database file is open to other users and its mode cannot be changed"
                    ),
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = db;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_new_folder_and_database_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/waotp-data");
        prepare_folder(&dir, "waotp.db").unwrap();
        prepare_files(&dir.join("waotp.db")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("waotp.db")), 0o600);
    }

    #[test]
    fn loose_files_and_a_dedicated_folder_are_tightened() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("waotp-data");
        std::fs::create_dir(&dir).unwrap();
        for name in ["waotp.db", "waotp.db-wal", "waotp.db-shm", "server.key"] {
            std::fs::write(dir.join(name), "").unwrap();
            std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_folder(&dir, "waotp.db").unwrap();
        prepare_files(&dir.join("waotp.db")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        for name in ["waotp.db", "waotp.db-wal", "waotp.db-shm", "server.key"] {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
    }

    #[test]
    fn an_empty_or_sticky_folder_is_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        let empty = tmp.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        std::fs::set_permissions(&empty, std::fs::Permissions::from_mode(0o777)).unwrap();
        prepare_folder(&empty, "waotp.db").unwrap();
        assert_eq!(mode(&empty), 0o777);
        let sticky = tmp.path().join("sticky");
        std::fs::create_dir(&sticky).unwrap();
        std::fs::write(sticky.join("waotp.db"), "").unwrap();
        std::fs::set_permissions(&sticky, std::fs::Permissions::from_mode(0o1777)).unwrap();
        prepare_folder(&sticky, "waotp.db").unwrap();
        assert_eq!(std::fs::metadata(&sticky).unwrap().permissions().mode() & 0o7777, 0o1777);
    }

    #[test]
    fn a_symlinked_key_file_is_not_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let elsewhere = tmp.path().join("mounted-secret");
        std::fs::write(&elsewhere, "secret").unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o644)).unwrap();
        let dir = tmp.path().join("data");
        std::fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("server.key")).unwrap();
        prepare_files(&dir.join("waotp.db")).unwrap();
        assert_eq!(mode(&elsewhere), 0o644);
        assert_eq!(mode(&dir.join("waotp.db")), 0o600);
    }

    #[test]
    fn a_shared_folder_is_left_as_it_is() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("notes.txt"), "").unwrap();
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_folder(tmp.path(), "waotp.db").unwrap();
        assert_eq!(mode(tmp.path()), 0o755);
    }
}
