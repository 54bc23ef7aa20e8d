//! Whose money a request spends.

/// Whose money: a user, or a user through a key with its own spend cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AccountId {
    pub user_id: i64,
    /// Set only for keys with a spend cap: their grants also hold against the key.
    pub capped_key: Option<i64>,
}
