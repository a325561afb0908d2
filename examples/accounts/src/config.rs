//! The service's configuration: one struct, every field both a flag and an environment variable.
//!
//! The toolkit's own settings (`--db`, `SQLITE_VOL_REQUIRE_PERSISTENT`, `SQLITE_VOL_EXPECT_EXISTING`,
//! `DB_POOL_SIZE`, `DB_TIMEOUT`, `SQLITE_VOL_BACKUP_*`, `SQLITE_VOL_RESTORE_FROM`) are the library's
//! [`sqlite_vol::Settings`], flattened in, so that `--help` lists them, each is defined once, and a value
//! that cannot be understood stops the service with a message naming it. The database location is
//! resolved by the library: `--db`, else `ACCOUNTS_DB_PATH`, `DB_PATH` and `DATABASE_URL` (falling back to
//! the per-user data directory), so that its log line and `/health` can say where the path came from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

/// `accounts`: a register/login HTTP service whose data survives restarts.
#[derive(Debug, Parser)]
#[command(name = "accounts", version, about)]
pub struct Cli {
    /// What to do; with none, serve the API.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Settings of the service.
    #[command(flatten)]
    pub config: Config,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve,
    /// Call this service's own `/health` on BIND_ADDR and exit 0 if it answers 200, else 1 (for a Docker
    /// HEALTHCHECK in an image without curl).
    Healthcheck,
}

/// Everything the service can be told.
#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Address to listen on (`0.0.0.0:8000` in a container; port 0 picks a free port).
    #[arg(
        long = "bind",
        env = "BIND_ADDR",
        default_value = "127.0.0.1:8000",
        global = true
    )]
    pub bind: SocketAddr,

    /// The toolkit's settings (database path, persistence policy, pool, backups), each a flag and its
    /// environment variable, defined once in the library.
    #[command(flatten)]
    pub database: sqlite_vol::Settings,

    /// How long a login token stays valid: seconds, or a number with s, m, h or d (`15m`, `24h`).
    #[arg(long, env = "TOKEN_TTL", default_value = "24h", value_parser = parse_ttl, value_name = "DURATION")]
    pub token_ttl: Duration,

    /// How many password hashes may run at once (each takes ~19 MiB); default: the number of CPUs.
    #[arg(long, env = "HASH_CONCURRENCY", value_parser = clap::value_parser!(u32).range(1..=256))]
    pub hash_concurrency: Option<u32>,

    /// After SIGTERM, how long to wait for requests in flight before closing anyway.
    #[arg(long, env = "SHUTDOWN_GRACE", default_value = "5s", value_parser = parse_duration, value_name = "DURATION")]
    pub shutdown_grace: Duration,
}

impl Default for Config {
    /// The values used when nothing is set.
    fn default() -> Config {
        Config {
            bind: SocketAddr::from((Ipv4Addr::LOCALHOST, 8000)),
            database: sqlite_vol::Settings::default(),
            token_ttl: Duration::from_secs(24 * 3600),
            hash_concurrency: None,
            shutdown_grace: Duration::from_secs(5),
        }
    }
}

impl Config {
    /// How many password hashes may run at once.
    pub fn hash_permits(&self) -> usize {
        match self.hash_concurrency {
            Some(n) => n as usize,
            None => std::thread::available_parallelism().map_or(2, |n| n.get()),
        }
    }

    /// The address a client on this machine should call: the bind address, with an unspecified host
    /// (`0.0.0.0`, `::`) replaced by loopback.
    pub fn local_addr(&self) -> SocketAddr {
        let ip = match self.bind.ip() {
            IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
            ip => ip,
        };
        SocketAddr::new(ip, self.bind.port())
    }
}

fn parse_duration(v: &str) -> Result<Duration, String> {
    sqlite_vol::settings::parse_duration(v)
        .ok_or_else(|| "use seconds (30) or a number with ms, s, m, h or d (15m)".into())
}

fn parse_ttl(v: &str) -> Result<Duration, String> {
    let d = parse_duration(v)?;
    if d < Duration::from_secs(1) {
        return Err("a token must live at least 1s".into());
    }
    if d > Duration::from_secs(366 * 86400) {
        return Err("a token may live at most 366d".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("accounts").chain(args.iter().copied()))
    }

    #[test]
    fn flags_override_defaults() -> Result<(), clap::Error> {
        let cli = parse(&[
            "--bind=0.0.0.0:9000",
            "--token-ttl=15m",
            "--require-persistent",
            "--backup-interval=6h",
        ])?;
        assert_eq!(cli.config.bind.port(), 9000);
        assert_eq!(cli.config.local_addr().ip(), Ipv4Addr::LOCALHOST);
        assert_eq!(cli.config.token_ttl, Duration::from_secs(900));
        assert_eq!(cli.config.database.require_persistent, Some(true));
        assert_eq!(
            cli.config.database.backup_interval,
            Some(Duration::from_secs(6 * 3600))
        );
        assert!(cli.command.is_none());
        Ok(())
    }

    #[test]
    fn healthcheck_accepts_the_bind_flag_after_it() -> Result<(), clap::Error> {
        let cli = parse(&["healthcheck", "--bind", "[::]:8123"])?;
        assert!(matches!(cli.command, Some(Command::Healthcheck)));
        assert_eq!(cli.config.local_addr().ip(), Ipv6Addr::LOCALHOST);
        Ok(())
    }

    #[test]
    fn refuses_unclear_values() {
        for args in [
            &["--require-persistent=yes-please"][..],
            &["--token-ttl=0"],
            &["--token-ttl=5 weeks"],
            &["--bind=localhost"],
            &["--pool-size=0"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn token_ttl_accepts_plain_seconds() -> Result<(), clap::Error> {
        assert_eq!(
            parse(&["--token-ttl", "30"])?.config.token_ttl,
            Duration::from_secs(30)
        );
        Ok(())
    }
}
