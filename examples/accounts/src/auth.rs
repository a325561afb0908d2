//! Passwords, tokens and the rules for what a valid email and password are.
//!
//! Passwords are hashed with argon2id at the `argon2` crate's default parameters (19 MiB, 2 passes), which
//! takes tens of milliseconds of one CPU: the [`Hasher`] runs every hash and verification on the blocking
//! thread pool and lets at most a fixed number run at once, so the HTTP workers never stall and memory
//! stays bounded under a flood of logins. A login for an unknown email verifies against a dummy hash made
//! at startup with the same parameters, so it costs the same time as a wrong password.
//!
//! A session token is 256 random bits from the operating system, given to the client as 64 hex digits;
//! the database keeps only its SHA-256, so a leaked database or backup holds no usable token.

use std::fmt;
use std::sync::Arc;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// Shortest accepted password, in bytes.
pub const MIN_PASSWORD_BYTES: usize = 8;
/// Longest accepted password, in bytes (hashing cost does not depend on it, but memory for the body does).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Longest accepted email, in bytes (RFC 5321's path limit).
pub const MAX_EMAIL_BYTES: usize = 254;

/// A password as received: its `Debug` never shows it.
#[derive(Clone, serde::Deserialize)]
#[serde(transparent)]
pub struct Password(String);

impl Password {
    /// The password's bytes, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Checks the length rules for a new password.
    ///
    /// # Errors
    /// [`ApiError::Invalid`] naming the rule.
    pub fn validate(&self) -> Result<(), ApiError> {
        let n = self.0.len();
        if n < MIN_PASSWORD_BYTES {
            return Err(ApiError::Invalid(format!(
                "password must be at least {MIN_PASSWORD_BYTES} bytes"
            )));
        }
        if n > MAX_PASSWORD_BYTES {
            return Err(ApiError::Invalid(format!(
                "password must be at most {MAX_PASSWORD_BYTES} bytes"
            )));
        }
        Ok(())
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

impl From<&str> for Password {
    fn from(s: &str) -> Password {
        Password(s.to_string())
    }
}

/// An email address, trimmed and lower-cased, as stored and compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Normalizes `raw` (trim, lower-case) without judging it: for looking an address up at login.
    pub fn normalize(raw: &str) -> Email {
        Email(raw.trim().to_lowercase())
    }

    /// Normalizes and checks `raw` for registration: one `@` with a non-empty local part, a domain with a
    /// dot and no empty labels, no whitespace or control characters, at most 254 bytes. Deliberately
    /// permissive beyond that (international addresses are accepted); the real check is a mail that
    /// arrives.
    ///
    /// # Errors
    /// [`ApiError::Invalid`] saying what is wrong.
    pub fn parse(raw: &str) -> Result<Email, ApiError> {
        let e = Email::normalize(raw);
        let bad = |why: &str| Err(ApiError::Invalid(format!("invalid email: {why}")));
        if e.0.is_empty() {
            return bad("it is empty");
        }
        if e.0.len() > MAX_EMAIL_BYTES {
            return bad("it is longer than 254 bytes");
        }
        if e.0.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return bad("it contains spaces or control characters");
        }
        let Some((local, domain)) = e.0.split_once('@') else {
            return bad("it has no @");
        };
        if local.is_empty() || local.len() > 64 {
            return bad("the part before @ must be 1 to 64 bytes");
        }
        if domain.contains('@') {
            return bad("it has more than one @");
        }
        let labels: Vec<&str> = domain.split('.').collect();
        if labels.len() < 2
            || labels
                .iter()
                .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
        {
            return bad("the domain must look like example.com");
        }
        Ok(e)
    }

    /// The normalized address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new session token: the secret for the client and the hash for the database.
pub struct NewToken {
    /// 64 lower-case hex digits, given to the client once.
    pub secret: String,
    /// SHA-256 of the token's bytes, stored.
    pub hash: TokenHash,
}

impl fmt::Debug for NewToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewToken(<redacted>)")
    }
}

/// The SHA-256 of a token's 32 bytes: what the database stores and looks up.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenHash(pub [u8; 32]);

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(<redacted>)")
    }
}

impl NewToken {
    /// 256 fresh random bits from the operating system.
    pub fn generate() -> NewToken {
        let mut bytes = [0u8; 32];
        OsRng.fill_bytes(&mut bytes);
        NewToken {
            secret: hex::encode(bytes),
            hash: hash_token_bytes(&bytes),
        }
    }
}

/// Parses a token as sent by a client (64 hex digits, either case) into its hash; `None` when malformed.
pub fn parse_token(s: &str) -> Option<TokenHash> {
    if s.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(s, &mut bytes).ok()?;
    Some(hash_token_bytes(&bytes))
}

fn hash_token_bytes(bytes: &[u8; 32]) -> TokenHash {
    TokenHash(Sha256::digest(bytes).into())
}

/// Runs argon2id off the async workers, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    dummy: Arc<str>,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hasher")
            .field("available", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

impl Hasher {
    /// A hasher that runs at most `permits` hashes at once. Makes the dummy hash (one argon2 run).
    ///
    /// # Errors
    /// [`ApiError::Internal`] if hashing fails (it does not with default parameters).
    pub async fn new(permits: usize) -> Result<Hasher, ApiError> {
        let permits = Arc::new(Semaphore::new(permits.max(1)));
        let mut random = [0u8; 32];
        OsRng.fill_bytes(&mut random);
        let dummy = tokio::task::spawn_blocking(move || hash_now(&hex::encode(random)))
            .await
            .map_err(ApiError::internal)??;
        Ok(Hasher {
            permits,
            dummy: dummy.into(),
        })
    }

    /// Hashes a new password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`).
    ///
    /// # Errors
    /// [`ApiError::Internal`] if hashing fails or the worker panics.
    pub async fn hash(&self, password: Password) -> Result<String, ApiError> {
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || hash_now(password.expose()))
            .await
            .map_err(ApiError::internal)?
    }

    /// Verifies `password` against `stored`, or against the dummy hash when there is no account, so both
    /// cases cost one argon2 run. Returns false for no account.
    ///
    /// # Errors
    /// [`ApiError::Internal`] if the worker panics.
    pub async fn verify(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, ApiError> {
        let _permit = self.permit().await?;
        let dummy = self.dummy.clone();
        tokio::task::spawn_blocking(move || {
            let (phc, real) = match &stored {
                Some(s) => (s.as_str(), true),
                None => (&*dummy, false),
            };
            let ok = match PasswordHash::new(phc) {
                Ok(h) => Argon2::default()
                    .verify_password(password.expose().as_bytes(), &h)
                    .is_ok(),
                Err(e) => {
                    tracing::error!(error = %e, "a stored password hash cannot be parsed");
                    false
                }
            };
            ok && real
        })
        .await
        .map_err(ApiError::internal)
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.permits.acquire().await.map_err(ApiError::internal)
    }
}

fn hash_now(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(anyhow::anyhow!("hashing a password: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() -> Result<(), ApiError> {
        assert_eq!(
            Email::parse("  Alice@Example.COM \n")?.as_str(),
            "alice@example.com"
        );
        assert_eq!(Email::parse("ünï@exämple.de")?.as_str(), "ünï@exämple.de");
        Ok(())
    }

    #[test]
    fn malformed_emails_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "   ",
            "alice",
            "@example.com",
            "alice@",
            "alice@localhost",
            "alice@@example.com",
            "a@b@example.com",
            "alice@example..com",
            "alice@-example.com",
            "al ice@example.com",
            "alice\u{0}@example.com",
            "alice\u{202e}@example.com\u{7}",
            &long,
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn password_length_is_counted_in_bytes() {
        assert!(Password::from("1234567").validate().is_err());
        assert!(Password::from("12345678").validate().is_ok());
        assert!(Password::from("ééé").validate().is_err()); // 6 bytes
        assert!(Password::from("éééé").validate().is_ok()); // 8 bytes
        assert!(Password::from("x".repeat(1024).as_str()).validate().is_ok());
        assert!(Password::from("x".repeat(1025).as_str())
            .validate()
            .is_err());
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let t = NewToken::generate();
        let p = Password::from("hunter22");
        let shown = format!("{t:?} {:?} {p:?}", t.hash);
        assert!(!shown.contains(&t.secret) && !shown.contains("hunter22"));
    }

    #[test]
    fn a_token_parses_back_to_its_hash() {
        let t = NewToken::generate();
        assert_eq!(t.secret.len(), 64);
        assert_eq!(parse_token(&t.secret), Some(t.hash.clone()));
        assert_eq!(parse_token(&t.secret.to_uppercase()), Some(t.hash));
        assert_eq!(parse_token("abc"), None);
        assert_eq!(parse_token(&"z".repeat(64)), None);
        assert_eq!(parse_token(&"é".repeat(32)), None);
    }

    #[tokio::test]
    async fn verify_accepts_the_right_password_only() -> Result<(), ApiError> {
        let h = Hasher::new(2).await?;
        let phc = h.hash(Password::from("correct horse")).await?;
        assert!(phc.starts_with("$argon2id$"));
        assert!(
            h.verify(Password::from("correct horse"), Some(phc.clone()))
                .await?
        );
        assert!(!h.verify(Password::from("wrong horse"), Some(phc)).await?);
        assert!(!h.verify(Password::from("correct horse"), None).await?);
        Ok(())
    }
}
