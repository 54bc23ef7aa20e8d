//! Passwords: argon2id at OWASP parameters (m = 19 MiB, t = 2, p = 1), on the blocking pool.
//! A bcrypt hash carried over by `tollgate import` (one-api's) is checked as bcrypt, and the
//! sign-in that passes it stores the password again as argon2id ([`is_legacy`]).

use crate::Error;
use argon2::password_hash::{
    PasswordHash, PasswordHasher, PasswordVerifier, SaltString, rand_core::OsRng,
};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::OnceLock;

pub const MIN_LEN: usize = 8;
pub const MAX_LEN: usize = 256;

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn validate(password: &str) -> Result<(), Error> {
    let n = password.chars().count();
    if n < MIN_LEN {
        return Err(Error::invalid(
            "password",
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if n > MAX_LEN {
        return Err(Error::invalid(
            "password",
            format!("must be at most {MAX_LEN} characters"),
        ));
    }
    Ok(())
}

/// Hashes a password into a PHC string.
pub async fn hash(password: String) -> Result<String, Error> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Internal(anyhow::anyhow!("hashing a password: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))?
}

/// Checks a password against a PHC string. `None` (no such user) still spends the same work
/// against a fixed hash, so the answer's timing does not tell whether the user exists.
pub async fn verify(password: String, stored: Option<String>) -> Result<bool, Error> {
    let exists = stored.is_some();
    let stored = match stored {
        Some(s) => s,
        None => dummy_hash().to_string(),
    };
    let ok = tokio::task::spawn_blocking(move || {
        if is_legacy(&stored) {
            return Ok(bcrypt::verify(password.as_bytes(), &stored).unwrap_or(false));
        }
        PasswordHash::new(&stored)
            .map(|h| argon2().verify_password(password.as_bytes(), &h).is_ok())
            .map_err(|e| Error::Internal(anyhow::anyhow!("stored password hash unreadable: {e}")))
    })
    .await
    .map_err(|e| Error::Internal(e.into()))??;
    Ok(ok && exists)
}

/// Whether a stored hash is not Tollgate's own (a bcrypt hash an import carried over).
pub fn is_legacy(stored: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"]
        .iter()
        .any(|p| stored.starts_with(p))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        argon2()
            .hash_password(b"no such user, no such password", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_the_right_password_only() {
        let h = hash("correct horse".into()).await.expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(
            verify("correct horse".into(), Some(h.clone()))
                .await
                .expect("verify")
        );
        assert!(!verify("wrong horse".into(), Some(h)).await.expect("verify"));
        assert!(!verify("anything".into(), None).await.expect("verify"));
    }

    #[test]
    fn enforces_length() {
        assert!(validate("short").is_err());
        assert!(validate("long enough").is_ok());
        assert!(validate(&"x".repeat(MAX_LEN + 1)).is_err());
    }
}
