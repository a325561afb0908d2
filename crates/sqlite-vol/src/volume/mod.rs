//! What the database directory is mounted on, and what that survives.
//!
//! Reads `/proc/self/mountinfo`, finds the mount that holds the database directory (the longest mount point
//! that is a prefix of the directory's real path; the last one wins when mounts are stacked), and classifies
//! it: the container's writable layer, a tmpfs, a Docker anonymous or named volume, a bind mount, a
//! Kubernetes emptyDir or persistent volume, a network filesystem, or the host's own filesystem. Each
//! [`VolumeKind`] says in words what it survives, whether it is persistent, and what to mount instead. Outside
//! Linux, or without mountinfo, the kind is [`VolumeKind::Unknown`] and nothing fails.

use std::path::{Component, Path, PathBuf};

/// The class of storage that holds the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum VolumeKind {
    /// The container's own writable (overlay) layer: gone with `docker rm`.
    ContainerLayer,
    /// A tmpfs (memory): gone at every stop.
    Tmpfs,
    /// A Docker anonymous volume (`-v /data` or a `VOLUME` line): survives restart, not re-creation.
    DockerAnonymousVolume,
    /// A Docker (or Podman) named volume: survives the container.
    DockerNamedVolume,
    /// A host folder bind-mounted into the container (or a device mounted there).
    BindMount,
    /// A Kubernetes emptyDir: lives as long as the pod.
    KubernetesEmptyDir,
    /// A Kubernetes persistent volume (claim).
    KubernetesPersistentVolume,
    /// NFS, CIFS and other network filesystems: persistent, but unsafe for SQLite's WAL.
    NetworkFilesystem,
    /// A filesystem of a machine, outside any container.
    HostFilesystem,
    /// Not Linux, or no mountinfo: nothing is known.
    Unknown,
}

impl VolumeKind {
    /// A short name for logs, e.g. "Docker named volume".
    pub fn describe(self) -> &'static str {
        match self {
            VolumeKind::ContainerLayer => "the container's writable layer (no volume mounted)",
            VolumeKind::Tmpfs => "a tmpfs (memory only)",
            VolumeKind::DockerAnonymousVolume => "a Docker anonymous volume",
            VolumeKind::DockerNamedVolume => "a Docker named volume",
            VolumeKind::BindMount => "a bind mount of a host folder",
            VolumeKind::KubernetesEmptyDir => "a Kubernetes emptyDir",
            VolumeKind::KubernetesPersistentVolume => "a Kubernetes persistent volume",
            VolumeKind::NetworkFilesystem => "a network filesystem",
            VolumeKind::HostFilesystem => "a machine's own disk (not a container layer)",
            VolumeKind::Unknown => "an unknown filesystem (mount table unavailable)",
        }
    }

    /// What this class of storage survives, in words.
    pub fn survives(self) -> &'static str {
        match self {
            VolumeKind::ContainerLayer => "survives `docker restart`, but is deleted with the container at `docker rm`",
            VolumeKind::Tmpfs => "lives in memory and is lost at every stop or reboot",
            VolumeKind::DockerAnonymousVolume => {
                "survives `docker restart`, but `docker rm` + `docker run` starts on a new, empty anonymous volume"
            }
            VolumeKind::DockerNamedVolume => {
                "survives restarts, removal and re-creation of the container; lost only by `docker volume rm` or `compose down -v`"
            }
            VolumeKind::BindMount => "lives in a host folder and survives the container; it lasts as long as that folder",
            VolumeKind::KubernetesEmptyDir => "lives as long as the pod: lost when the pod is deleted or rescheduled",
            VolumeKind::KubernetesPersistentVolume => "survives pod restarts, deletion and rescheduling",
            VolumeKind::NetworkFilesystem => {
                "survives, but SQLite's WAL needs shared memory and reliable locks that network filesystems do not give: corruption risk"
            }
            VolumeKind::HostFilesystem => "survives process restarts and reboots",
            VolumeKind::Unknown => "unknown",
        }
    }

    /// Whether data here outlives the container (or pod). `None` when unknown.
    pub fn persistent(self) -> Option<bool> {
        match self {
            VolumeKind::ContainerLayer
            | VolumeKind::Tmpfs
            | VolumeKind::DockerAnonymousVolume
            | VolumeKind::KubernetesEmptyDir => Some(false),
            VolumeKind::DockerNamedVolume
            | VolumeKind::BindMount
            | VolumeKind::KubernetesPersistentVolume
            | VolumeKind::NetworkFilesystem
            | VolumeKind::HostFilesystem => Some(true),
            VolumeKind::Unknown => None,
        }
    }

    /// Whether SQLite in WAL mode is safe on this storage.
    pub fn wal_safe(self) -> bool {
        self != VolumeKind::NetworkFilesystem
    }
}

/// The mount that holds the database directory, and its class.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Volume {
    /// The class.
    pub kind: VolumeKind,
    /// Whether it outlives the container; `None` when unknown.
    pub persistent: Option<bool>,
    /// The mount point (inside this process's view).
    pub mount_point: Option<PathBuf>,
    /// The filesystem type, e.g. `ext4`, `overlay`, `tmpfs`.
    pub fs_type: Option<String>,
    /// The root of the mount within its source filesystem (for a Docker volume its `_data` folder).
    pub root: Option<String>,
    /// The mount source, e.g. `/dev/vda`.
    pub source: Option<String>,
    /// Mounted read-only.
    pub read_only: bool,
    /// Whether this process runs inside a container.
    pub in_container: bool,
}

impl std::fmt::Display for Volume {
    /// `a Docker named volume at /data: survives ...`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind.describe())?;
        if let Some(m) = &self.mount_point {
            write!(f, " at {}", m.display())?;
        }
        write!(f, ": {}", self.kind.survives())
    }
}

impl Volume {
    /// A volume about which nothing is known.
    pub fn unknown() -> Volume {
        Volume {
            kind: VolumeKind::Unknown,
            persistent: None,
            mount_point: None,
            fs_type: None,
            root: None,
            source: None,
            read_only: false,
            in_container: false,
        }
    }

    /// Classifies the storage that holds `dir` in this process (reads `/proc/self/mountinfo`).
    pub fn detect(dir: &Path) -> Volume {
        match std::fs::read_to_string("/proc/self/mountinfo") {
            Ok(text) => {
                let real = real_path(dir);
                let in_container = container_markers() || mountinfo_says_container(&text);
                Volume::classify(&text, &real, in_container)
            }
            Err(_) => Volume::unknown(),
        }
    }

    /// Classifies `dir` (an absolute, symlink-free path) against a mountinfo text.
    pub fn classify(mountinfo: &str, dir: &Path, in_container: bool) -> Volume {
        let mounts: Vec<Mount> = mountinfo.lines().filter_map(Mount::parse).collect();
        let in_k8s = mounts.iter().any(|m| m.root.contains("/kubelet/pods/"));
        let Some(m) = mounts
            .iter()
            .filter(|m| dir.starts_with(&m.mount_point))
            .max_by_key(|m| m.mount_point.components().count())
        else {
            return Volume::unknown();
        };
        // When several mounts share the chosen mount point, the last one listed is on top.
        let m = mounts
            .iter()
            .rev()
            .find(|x| x.mount_point == m.mount_point)
            .unwrap_or(m);
        let kind = kind_of(m, in_container || in_k8s, in_k8s);
        Volume {
            kind,
            persistent: kind.persistent(),
            mount_point: Some(m.mount_point.clone()),
            fs_type: Some(m.fs_type.clone()),
            root: Some(m.root.clone()),
            source: Some(m.source.clone()),
            read_only: m.read_only,
            in_container: in_container || in_k8s,
        }
    }

    /// What to mount instead, for a volume that will not survive, naming `dir`.
    pub fn fix(&self, dir: &Path) -> String {
        let d = dir.display();
        match self.kind {
            VolumeKind::KubernetesEmptyDir => {
                format!("mount a PersistentVolumeClaim at {d} (a StatefulSet volumeClaimTemplate) instead of an emptyDir")
            }
            VolumeKind::NetworkFilesystem => format!("put {d} on a local disk volume, not a network share"),
            _ if self.kind.persistent() == Some(false) => format!(
                "mount a named volume at {d}: `docker run -v NAME:{d} …` (compose: `volumes: [\"NAME:{d}\"]`) or a host folder with `-v /srv/NAME:{d}`"
            ),
            _ => "nothing to do".into(),
        }
    }
}

/// One line of mountinfo.
#[derive(Debug, Clone)]
struct Mount {
    root: String,
    mount_point: PathBuf,
    read_only: bool,
    fs_type: String,
    source: String,
}

impl Mount {
    /// Parses a mountinfo line (see proc(5)); `None` for a malformed one.
    fn parse(line: &str) -> Option<Mount> {
        let (left, right) = line.split_once(" - ")?;
        let fields: Vec<&str> = left.split(' ').collect();
        let right: Vec<&str> = right.split(' ').collect();
        if fields.len() < 6 || right.len() < 2 {
            return None;
        }
        let options = fields[5];
        Some(Mount {
            root: unescape(fields[3]),
            mount_point: PathBuf::from(unescape(fields[4])),
            read_only: options.split(',').any(|o| o == "ro"),
            fs_type: right[0].to_string(),
            source: unescape(right[1]),
        })
    }
}

/// Undoes mountinfo's octal escapes (`\040` space, `\011` tab, `\012` newline, `\134` backslash).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 4 <= bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') as u32 * 64
                + (bytes[i + 2] - b'0') as u32 * 8
                + (bytes[i + 3] - b'0') as u32;
            if let Ok(b) = u8::try_from(v) {
                out.push(b);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const NETWORK_FS: &[&str] = &[
    "nfs",
    "nfs4",
    "cifs",
    "smb3",
    "smbfs",
    "ceph",
    "glusterfs",
    "fuse.glusterfs",
    "fuse.sshfs",
    "lustre",
    "afs",
    "9p",
    "fuse.s3fs",
    "fuse.gcsfuse",
    "fuse.rclone",
    "virtiofs",
];

fn kind_of(m: &Mount, in_container: bool, in_k8s: bool) -> VolumeKind {
    let fs = m.fs_type.as_str();
    if NETWORK_FS.contains(&fs) || fs.starts_with("nfs") {
        return VolumeKind::NetworkFilesystem;
    }
    if m.root.contains("kubernetes.io~empty-dir") {
        return VolumeKind::KubernetesEmptyDir;
    }
    if matches!(fs, "tmpfs" | "ramfs") {
        return VolumeKind::Tmpfs;
    }
    if m.root.contains("/volumes/kubernetes.io~") {
        return VolumeKind::KubernetesPersistentVolume;
    }
    if let Some(name) = docker_volume_name(&m.root) {
        let anonymous = name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit());
        return if anonymous {
            VolumeKind::DockerAnonymousVolume
        } else {
            VolumeKind::DockerNamedVolume
        };
    }
    let layered = matches!(fs, "overlay" | "aufs" | "fuse-overlayfs" | "overlayfs");
    if m.mount_point == Path::new("/") {
        return if layered && in_container {
            VolumeKind::ContainerLayer
        } else {
            VolumeKind::HostFilesystem
        };
    }
    if !in_container {
        return VolumeKind::HostFilesystem;
    }
    if in_k8s && m.root == "/" && m.source.starts_with("/dev/") {
        return VolumeKind::KubernetesPersistentVolume;
    }
    VolumeKind::BindMount
}

/// `<anything>/volumes/<name>/_data` → `name` (Docker and Podman volumes; matched on the tail because
/// `/var/lib/docker` may be its own partition).
fn docker_volume_name(root: &str) -> Option<&str> {
    let rest = root.strip_suffix("/_data")?;
    let (parent, name) = rest.rsplit_once('/')?;
    parent
        .ends_with("/volumes")
        .then_some(name)
        .filter(|n| !n.is_empty())
}

fn container_markers() -> bool {
    Path::new("/.dockerenv").exists()
        || Path::new("/run/.containerenv").exists()
        || std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

fn mountinfo_says_container(text: &str) -> bool {
    text.contains("/docker/containers/")
        || text.contains("/kubelet/pods/")
        || text.contains("/containers/storage/")
}

/// The real path of `dir`, resolving symlinks in the longest existing ancestor (the rest may not exist yet).
fn real_path(dir: &Path) -> PathBuf {
    let mut existing = dir.to_path_buf();
    let mut rest = Vec::new();
    loop {
        if let Ok(real) = existing.canonicalize() {
            let mut out = real;
            out.extend(rest.iter().rev());
            return out;
        }
        match (
            existing.file_name().map(|n| n.to_os_string()),
            existing.parent(),
        ) {
            (Some(name), Some(parent)) => {
                rest.push(name);
                existing = parent.to_path_buf();
            }
            _ => {
                return dir
                    .components()
                    .filter(|c| !matches!(c, Component::CurDir))
                    .collect()
            }
        }
    }
}

#[cfg(test)]
mod tests;
