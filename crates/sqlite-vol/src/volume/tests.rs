//! The volume classes against real mountinfo texts: the shared fixtures, escapes, stacked mounts,
//! Kubernetes and network filesystems.

use super::*;

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mountinfo")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

fn classify(name: &str) -> Volume {
    Volume::classify(&fixture(name), Path::new("/data"), true)
}

#[test]
fn no_volume_is_the_container_layer_and_not_persistent() {
    let v = classify("docker-no-volume.txt");
    assert_eq!(v.kind, VolumeKind::ContainerLayer);
    assert_eq!(v.persistent, Some(false));
    assert_eq!(v.mount_point.as_deref(), Some(Path::new("/")));
    assert!(v.fix(Path::new("/data")).contains("-v NAME:/data"));
}

#[test]
fn anonymous_volume_is_recognised_by_its_64_hex_name() {
    let v = classify("docker-anonymous-volume.txt");
    assert_eq!(v.kind, VolumeKind::DockerAnonymousVolume);
    assert_eq!(v.persistent, Some(false));
    assert_eq!(v.fs_type.as_deref(), Some("ext4"));
}

#[test]
fn named_volume_is_persistent() {
    let v = classify("docker-named-volume.txt");
    assert_eq!(v.kind, VolumeKind::DockerNamedVolume);
    assert_eq!(v.persistent, Some(true));
    assert!(!v.read_only);
}

#[test]
fn bind_mounts_rw_and_ro() {
    let v = classify("docker-bind-mount.txt");
    assert_eq!((v.kind, v.read_only), (VolumeKind::BindMount, false));
    let v = classify("docker-bind-mount-readonly.txt");
    assert_eq!((v.kind, v.read_only), (VolumeKind::BindMount, true));
}

#[test]
fn tmpfs_is_not_persistent() {
    let v = classify("docker-tmpfs.txt");
    assert_eq!(v.kind, VolumeKind::Tmpfs);
    assert_eq!(v.persistent, Some(false));
}

#[test]
fn subdirectories_belong_to_the_volume_above_them() {
    let v = Volume::classify(
        &fixture("docker-named-volume.txt"),
        Path::new("/data/app/db"),
        true,
    );
    assert_eq!(v.kind, VolumeKind::DockerNamedVolume);
    // `/database` is not under `/data`: component-wise prefix, not string prefix.
    let v = Volume::classify(
        &fixture("docker-named-volume.txt"),
        Path::new("/database"),
        true,
    );
    assert_eq!(v.kind, VolumeKind::ContainerLayer);
}

#[test]
fn kubernetes_empty_dir_and_persistent_volumes() {
    let base = "1 0 0:1 / / rw - overlay overlay rw\n";
    let empty = format!("{base}2 1 8:1 /var/lib/kubelet/pods/u-1/volumes/kubernetes.io~empty-dir/data /data rw - ext4 /dev/sda1 rw\n");
    assert_eq!(
        Volume::classify(&empty, Path::new("/data"), false).kind,
        VolumeKind::KubernetesEmptyDir
    );
    let pvc = format!("{base}2 1 8:1 /var/lib/kubelet/pods/u-1/volumes/kubernetes.io~csi/pvc-1/mount /data rw - ext4 /dev/sdb rw\n");
    let v = Volume::classify(&pvc, Path::new("/data"), false);
    assert_eq!(v.kind, VolumeKind::KubernetesPersistentVolume);
    assert!(v.in_container);
    let device = format!("{base}2 1 8:1 / /data rw - ext4 /dev/nvme1n1 rw\n3 1 8:1 /var/lib/kubelet/pods/u-1/etc-hosts /etc/hosts rw - ext4 /dev/sda1 rw\n");
    assert_eq!(
        Volume::classify(&device, Path::new("/data"), true).kind,
        VolumeKind::KubernetesPersistentVolume
    );
}

#[test]
fn network_filesystems_are_flagged_unsafe_for_wal() {
    let text =
        "1 0 0:1 / / rw - ext4 /dev/vda rw\n2 1 0:50 /export /data rw - nfs4 srv:/export rw\n";
    let v = Volume::classify(text, Path::new("/data"), false);
    assert_eq!(v.kind, VolumeKind::NetworkFilesystem);
    assert!(!v.kind.wal_safe());
}

#[test]
fn host_filesystem_outside_a_container() {
    let text = "1 0 254:0 / / rw - ext4 /dev/vda rw\n2 1 254:1 / /srv rw - xfs /dev/vdb rw\n";
    assert_eq!(
        Volume::classify(text, Path::new("/srv/x"), false).kind,
        VolumeKind::HostFilesystem
    );
    assert_eq!(
        Volume::classify(text, Path::new("/home/u"), false).kind,
        VolumeKind::HostFilesystem
    );
}

#[test]
fn escaped_spaces_in_mount_points_are_decoded() {
    let text = "1 0 0:1 / / rw - overlay overlay rw\n2 1 8:1 /var/lib/docker/volumes/my\\040vol/_data /my\\040data rw - ext4 /dev/sda rw\n";
    let v = Volume::classify(text, Path::new("/my data/sub"), true);
    assert_eq!(v.kind, VolumeKind::DockerNamedVolume);
    assert_eq!(v.mount_point.as_deref(), Some(Path::new("/my data")));
}

#[test]
fn stacked_mounts_take_the_last_one() {
    let text = "1 0 0:1 / / rw - overlay overlay rw\n2 1 8:1 /var/lib/docker/volumes/v/_data /data rw - ext4 /dev/sda rw\n3 1 0:9 / /data rw - tmpfs tmpfs rw\n";
    assert_eq!(
        Volume::classify(text, Path::new("/data"), true).kind,
        VolumeKind::Tmpfs
    );
}

#[test]
fn garbage_mountinfo_gives_unknown_without_failing() {
    for text in ["", "garbage", "1 2 3\n - \n", "\u{0}\u{1} - x"] {
        assert_eq!(
            Volume::classify(text, Path::new("/data"), true).kind,
            VolumeKind::Unknown
        );
    }
}

#[test]
fn real_path_keeps_missing_tail() -> std::io::Result<()> {
    let tmp = tempfile::tempdir()?;
    let p = real_path(&tmp.path().join("a/b"));
    assert!(p.ends_with("a/b"));
    assert!(p.is_absolute());
    Ok(())
}
