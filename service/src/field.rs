//! A field that does not hold what it must: the ground floor's parse error, named by the field.
//! `config` (which may name nothing above it) and `error` (which maps it to a 400) share it.

/// `field` is wrong because of `reason`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &'static str, reason: impl Into<String>) -> Self {
        FieldError {
            field,
            reason: reason.into(),
        }
    }
}

/// A name or note as people type it: 1 to `max` characters, not all blank, and no control
/// character (PostgreSQL's text cannot hold a NUL; a line break in a name misleads).
pub fn check_text(field: &'static str, text: &str, max: usize) -> Result<(), FieldError> {
    if text.trim().is_empty() || text.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("must be 1 to {max} characters"),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// A user group's name (`limits.groups`, a group multiplier, a user's group, a channel's
/// groups): 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn check_group(field: &'static str, name: &str) -> Result<(), FieldError> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(FieldError::new(
            field,
            "must be 1 to 64 letters, digits, -, _ or .",
        ));
    }
    Ok(())
}
