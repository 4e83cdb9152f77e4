//! Publishing files atomically: write a temp file in the same directory, fsync
//! it, rename it into place, fsync the directory (so the rename survives a crash).
//!
//! A writer killed before the rename leaves its temp file behind; the name says
//! which process wrote it (`.<name>.tmp-<pid>-<8 hex>`), so a later run can remove
//! those whose writer is gone (`remove_stale_temporaries`).

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};

/// A hidden, unique sibling of `final_path` (same directory, so the rename is atomic).
pub fn temp_path(final_path: &Path) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let salt = [nanos, COUNTER.fetch_add(1, Ordering::Relaxed), std::process::id() as u64];
    let salt: Vec<u8> = salt.iter().flat_map(|v| v.to_le_bytes()).collect();
    let unique = xxhash_rust::xxh3::xxh3_64(&salt) as u32;
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    final_path.with_file_name(format!(".{name}.tmp-{}-{unique:08x}", std::process::id()))
}

/// fsync a file or directory by path (a directory fsync makes a rename in it durable).
pub fn fsync_path(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

/// Whether a rename must survive a crash (a store file) or may be lost (a cache entry,
/// which is re-checked on use anyway).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    Durable,
    CacheOnly,
}

/// Move a complete temp file into place: fsync it, rename, fsync the directory.
/// On failure the temp file is removed.
pub fn publish(tmp: &Path, final_path: &Path, durability: Durability) -> Result<()> {
    let result = (|| {
        if durability == Durability::Durable {
            fsync_path(tmp).map_err(|e| Error::io(tmp, e))?;
        }
        std::fs::rename(tmp, final_path).map_err(|e| Error::io(final_path, e))?;
        if durability == Durability::Durable {
            let dir = parent_dir(final_path);
            fsync_path(dir).map_err(|e| Error::io(dir, e))?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(tmp);
    }
    result
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Write `final_path` atomically and durably: `write` fills the temp file (given its
/// path); an error from it, or from publishing, leaves nothing behind.
pub fn write_atomic<T>(final_path: &Path, write: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
    let tmp = temp_path(final_path);
    let result = write(&tmp).and_then(|value| publish(&tmp, final_path, Durability::Durable).map(|()| value));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Write `bytes` to `final_path` atomically and durably.
pub fn write_bytes_atomic(final_path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic(final_path, |tmp| std::fs::write(tmp, bytes).map_err(|e| Error::io(tmp, e)))
}

/// A temp name taken apart: the final name it is for and the writing process's id.
/// `temp_path`'s form `.<name>.tmp-<pid>-<8 hex>`, or the older `<name>.tmp-<pid>` of the
/// converter's done records. `None` for any other name.
fn parse_temp_name(name: &str) -> Option<(&str, u64)> {
    // Try every ".tmp-" with at least one character before it (the name part).
    let mut from = 1;
    while let Some(at) = name.get(from..).and_then(|rest| rest.find(".tmp-")) {
        let at = from + at;
        let tail = &name[at + 5..];
        let (pid, unique) = match tail.split_once('-') {
            Some((pid, unique)) => (pid, Some(unique)),
            None => (tail, None),
        };
        let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
        let unique_ok =
            unique.is_none_or(|u| u.len() == 8 && u.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        if pid_ok && unique_ok {
            let stem = &name[..at];
            // `temp_path` hides the temp file with a leading '.'; the older form kept the name as it was.
            let target = if unique.is_some() { stem.strip_prefix('.').unwrap_or(stem) } else { stem };
            return Some((target, pid.parse().unwrap_or(u64::MAX)));
        }
        from = at + 1;
    }
    None
}

/// The pid in a temp name (`parse_temp_name`'s forms). `None` for any other name.
pub fn temp_name_pid(name: &str) -> Option<u64> {
    parse_temp_name(name).map(|(_, pid)| pid)
}

/// The final name a temp file is for (`.shard.arrow.tmp-7-0123abcd` -> `shard.arrow`,
/// `done.json.tmp-7` -> `done.json`). `None` for a name that is not a temp name.
pub fn temp_target(name: &str) -> Option<&str> {
    parse_temp_name(name).map(|(target, _)| target).filter(|t| !t.is_empty())
}

/// Whether process `pid` may still be running (when in doubt: yes, keep its files).
fn process_exists(pid: u64) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else { return true };
        // SAFETY: signal 0 only asks whether the process exists; nothing is sent.
        if unsafe { libc::kill(pid, 0) } == 0 {
            return !is_zombie(pid);
        }
        // EPERM: another user's process. ESRCH: gone.
        io::Error::last_os_error().raw_os_error() != Some(libc::ESRCH)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true // no probe that cannot harm the process: keep the file
    }
}

/// Whether `pid` has exited and waits only to be reaped (Linux `/proc`; elsewhere: no).
/// A killed writer's parent may be gone too, and an init that reaps late (as in some
/// containers) leaves it a zombie for a while: it writes nothing more, its files are stale.
#[cfg(unix)]
fn is_zombie(pid: libc::pid_t) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // "pid (comm) state ...": comm may hold spaces and parentheses, the state follows the last ')'.
    stat.rsplit_once(')').is_some_and(|(_, rest)| matches!(rest.trim_start().chars().next(), Some('Z' | 'X')))
}

/// Remove the temp files in `dir` whose writing process no longer exists (left by a
/// killed writer); a live process's are kept. Returns the names removed. A missing
/// directory has none.
pub fn remove_stale_temporaries(dir: &Path) -> Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(dir, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        match temp_name_pid(&name) {
            Some(pid) if !process_exists(pid) => {}
            _ => continue,
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => removed.push(name),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(entry.path(), e)),
        }
    }
    removed.sort();
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_pid_and_are_recognised() {
        let tmp = temp_path(Path::new("/x/shard-00001.arrow"));
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(".shard-00001.arrow.tmp-"), "{name}");
        assert_eq!(temp_name_pid(name), Some(std::process::id() as u64));
        assert_eq!(temp_name_pid("done.json.tmp-123"), Some(123));
        assert_eq!(temp_name_pid(".a.tmp-7-0123abcd"), Some(7));
        for other in ["shard-00001.arrow", ".tmp-5", "a.tmp-", "a.tmp-12-xyz", "a.tmp-12-0123abcde"] {
            assert_eq!(temp_name_pid(other), None, "{other}");
        }
        assert_ne!(temp_path(Path::new("a")), temp_path(Path::new("a")));
    }

    #[test]
    fn a_temp_name_says_which_final_name_it_is_for() {
        let tmp = temp_path(Path::new("/x/t-000.arrow"));
        assert_eq!(temp_target(tmp.file_name().unwrap().to_str().unwrap()), Some("t-000.arrow"));
        assert_eq!(temp_target("report.json.tmp-123"), Some("report.json"));
        assert_eq!(temp_target(".a.b.tmp-7-0123abcd"), Some("a.b"));
        assert_eq!(temp_target("a.tmp-x.tmp-7"), Some("a.tmp-x"));
        for other in ["t-000.arrow", ".tmp-5", "a.tmp-", "a.tmp-12-xyz", "a.tmp-12-0123abcde", "..tmp-1-0123abcd"] {
            assert_eq!(temp_target(other), None, "{other}");
        }
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_zombie_writers_temporaries_are_stale() {
        let dir = std::env::temp_dir().join(format!("atomic-zombie-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id() as libc::pid_t;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) {
            // exited, not reaped: kill(pid, 0) still succeeds
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let name = format!(".d.json.tmp-{pid}-00000000");
        std::fs::write(dir.join(&name), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), vec![name]);
        child.wait().unwrap();
        assert!(!is_zombie(std::process::id() as libc::pid_t));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stale_temporaries_of_dead_writers_are_removed_live_ones_kept() {
        let dir = std::env::temp_dir().join(format!("atomic-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mine = temp_path(&dir.join("m.json"));
        std::fs::write(&mine, b"x").unwrap();
        // pid 2^22 + 1 is above Linux's default pid_max: no such process.
        let dead = dir.join(".m.json.tmp-4194305-00000000");
        std::fs::write(&dead, b"x").unwrap();
        std::fs::write(dir.join("keep.txt"), b"x").unwrap();
        assert_eq!(remove_stale_temporaries(&dir).unwrap(), vec![".m.json.tmp-4194305-00000000".to_string()]);
        assert!(mine.exists() && !dead.exists());
        write_bytes_atomic(&dir.join("m.json"), b"{}").unwrap();
        assert_eq!(std::fs::read(dir.join("m.json")).unwrap(), b"{}");
        let failed: Result<()> = write_atomic(&dir.join("n.json"), |tmp| {
            std::fs::write(tmp, b"half").unwrap();
            Err(Error::InvalidArgument("stop".into()))
        });
        assert!(failed.is_err() && !dir.join("n.json").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
