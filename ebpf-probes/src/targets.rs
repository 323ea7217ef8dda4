//! Finding the OpenSSL libraries to probe for the chosen processes and cgroups.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Where a host usually keeps its OpenSSL 3 (and 1.1): probed for cgroup targets, so that
/// processes started later in the cgroup are covered too.
const SYSTEM_LIBSSL: [&str; 4] = [
    "/usr/lib/x86_64-linux-gnu/libssl.so.3",
    "/usr/lib64/libssl.so.3",
    "/usr/lib/libssl.so.3",
    "/usr/lib/x86_64-linux-gnu/libssl.so.1.1",
];

/// Processes visited at most in one cgroup tree (a bound on /proc reads).
const MAX_PROCS: usize = 4096;

/// A library file to attach to, named as this process can open it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Library {
    pub path: PathBuf,
    /// (device, inode): one file reached through several paths is probed once.
    pub id: (u64, u64),
}

fn library(path: PathBuf) -> Option<Library> {
    let m = std::fs::metadata(&path).ok()?;
    Some(Library {
        path,
        id: (m.dev(), m.ino()),
    })
}

/// The libssl files mapped by process `pid`, reached through `/proc/PID/root` so that a process
/// in another mount namespace (a container) is probed in its own library.
pub fn libraries_of(pid: u32) -> Result<Vec<Library>, String> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps"))
        .map_err(|e| format!("cannot read /proc/{pid}/maps: {e}"))?;
    let mut out: Vec<Library> = Vec::new();
    for path in maps_libssl(&maps) {
        let rooted = PathBuf::from(format!("/proc/{pid}/root{path}"));
        if let Some(l) = library(rooted).or_else(|| library(PathBuf::from(path)))
            && !out.iter().any(|o| o.id == l.id)
        {
            out.push(l);
        }
    }
    Ok(out)
}

/// The paths of libssl in a `/proc/PID/maps` text.
fn maps_libssl(maps: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    for line in maps.lines() {
        // address perms offset dev inode path
        let Some(path) = line.split_whitespace().nth(5) else {
            continue;
        };
        let name = path.rsplit('/').next().unwrap_or("");
        if name.starts_with("libssl.so") && !out.contains(&path) {
            out.push(path);
        }
    }
    out
}

/// The executable of `pid`, for programs that link OpenSSL statically.
pub fn executable_of(pid: u32) -> Option<Library> {
    library(PathBuf::from(format!("/proc/{pid}/exe")))
}

/// The host's usual libssl files that exist.
pub fn system_libraries() -> Vec<Library> {
    let mut out: Vec<Library> = Vec::new();
    for p in SYSTEM_LIBSSL {
        if let Some(l) = library(PathBuf::from(p))
            && !out.iter().any(|o| o.id == l.id)
        {
            out.push(l);
        }
    }
    out
}

/// Where the cgroup v2 hierarchy is: /sys/fs/cgroup (unified), /sys/fs/cgroup/unified (hybrid
/// v1/v2 hosts), or, when nothing is mounted there (a fresh sysfs, as `ip netns exec` makes), a
/// cgroup2 mount we make at /sys/fs/cgroup. The ids `bpf_get_current_cgroup_id` returns are
/// those of this hierarchy.
pub fn cgroup_root() -> Result<PathBuf, String> {
    for root in ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"] {
        if Path::new(root).join("cgroup.controllers").exists() {
            return Ok(PathBuf::from(root));
        }
    }
    let root = Path::new("/sys/fs/cgroup");
    let empty = root.read_dir().map(|mut d| d.next().is_none()).unwrap_or(false);
    if empty {
        let (src, target, fstype) = (c"cgroup2", c"/sys/fs/cgroup", c"cgroup2");
        // SAFETY: valid NUL-terminated strings and no data argument.
        let rc = unsafe { libc::mount(src.as_ptr(), target.as_ptr(), fstype.as_ptr(), 0, std::ptr::null()) };
        if rc == 0 {
            tracing::info!("mounted cgroup2 at /sys/fs/cgroup");
            return Ok(root.to_path_buf());
        }
        return Err(format!(
            "no cgroup v2 hierarchy is mounted and mounting one at /sys/fs/cgroup failed ({})",
            std::io::Error::last_os_error()
        ));
    }
    Err("no cgroup v2 hierarchy found (neither /sys/fs/cgroup nor /sys/fs/cgroup/unified is cgroup2)".into())
}

/// A cgroup (v2) directory: an absolute path under `root`, or a path relative to it.
pub fn cgroup_dir(root: &Path, spec: &Path) -> PathBuf {
    if spec.starts_with(root) || (spec.is_absolute() && spec.starts_with("/sys/fs/cgroup")) {
        spec.to_path_buf()
    } else {
        root.join(spec.strip_prefix("/").unwrap_or(spec))
    }
}

/// The cgroup id the kernel reports for tasks in `dir` (`bpf_get_current_cgroup_id`): the
/// directory's inode number on cgroup2.
pub fn cgroup_id(dir: &Path) -> Result<u64, String> {
    let m = std::fs::metadata(dir).map_err(|e| format!("cgroup {}: {e}", dir.display()))?;
    if !m.is_dir() || !dir.join("cgroup.procs").exists() {
        return Err(format!("{} is not a cgroup v2 directory", dir.display()));
    }
    Ok(m.ino())
}

/// The cgroup ids of `dir` and of every cgroup below it, and the processes in them (bounded).
pub fn cgroup_tree(dir: &Path) -> (Vec<u64>, Vec<u32>) {
    let mut ids = Vec::new();
    let mut pids = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        if let Ok(id) = cgroup_id(&d) {
            ids.push(id);
        }
        if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
            pids.extend(procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()));
        }
        if pids.len() >= MAX_PROCS || ids.len() >= MAX_PROCS {
            break;
        }
        if let Ok(rd) = std::fs::read_dir(&d) {
            todo.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    pids.truncate(MAX_PROCS);
    (ids, pids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libssl_paths_from_maps() {
        let maps = "\
7f00-7f01 r--p 00000000 fe:01 123 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f01-7f02 r-xp 00001000 fe:01 123 /usr/lib/x86_64-linux-gnu/libssl.so.3
7f02-7f03 r--p 00000000 fe:01 124 /usr/lib/x86_64-linux-gnu/libcrypto.so.3
7f03-7f04 rw-p 00000000 00:00 0
7f05-7f06 r-xp 00000000 fe:01 125 /opt/app/lib/libssl.so.1.1 (deleted)
";
        assert_eq!(
            maps_libssl(maps),
            ["/usr/lib/x86_64-linux-gnu/libssl.so.3", "/opt/app/lib/libssl.so.1.1"]
        );
    }

    #[test]
    fn cgroup_paths() {
        let root = Path::new("/sys/fs/cgroup");
        let at = |spec: &str| cgroup_dir(root, Path::new(spec));
        assert_eq!(
            at("system.slice/x.service"),
            Path::new("/sys/fs/cgroup/system.slice/x.service")
        );
        assert_eq!(at("/kubepods/pod1"), Path::new("/sys/fs/cgroup/kubepods/pod1"));
        assert_eq!(at("/sys/fs/cgroup/a"), Path::new("/sys/fs/cgroup/a"));
        let hybrid = Path::new("/sys/fs/cgroup/unified");
        assert_eq!(
            cgroup_dir(hybrid, Path::new("wl/x")),
            Path::new("/sys/fs/cgroup/unified/wl/x")
        );
        assert_eq!(
            cgroup_dir(hybrid, Path::new("/sys/fs/cgroup/unified/wl")),
            Path::new("/sys/fs/cgroup/unified/wl")
        );
        assert!(cgroup_id(Path::new("/nonexistent/cgroup")).is_err());
    }

    #[test]
    fn this_process_has_no_libssl_but_its_maps_are_readable() {
        let libs = libraries_of(std::process::id()).expect("own maps");
        assert!(libs.iter().all(|l| l.path.to_string_lossy().contains("libssl")));
        assert!(libraries_of(u32::MAX).is_err());
    }
}
