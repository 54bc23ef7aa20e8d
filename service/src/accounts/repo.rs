//! SQL for users and sessions, in the house dialect (see `db`).

use crate::Error;
use crate::db::{Db, WriteTx, is_unique_violation};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use types::{Credits, Role, UserInfo, UserStatus};

pub struct UserRow {
    pub info: UserInfo,
    pub password_hash: String,
}

const USER_COLUMNS: &str =
    "id, username, password_hash, role, status, user_group, balance, created_at, deleted_at";

fn user_row(row: &AnyRow) -> Result<UserRow, Error> {
    let role: String = row.try_get("role")?;
    let status: String = row.try_get("status")?;
    let balance: i64 = row.try_get("balance")?;
    Ok(UserRow {
        info: UserInfo {
            id: row.try_get("id")?,
            username: row.try_get("username")?,
            role: role
                .parse()
                .map_err(|()| anyhow::anyhow!("unknown role {role:?} in users"))?,
            status: status
                .parse()
                .map_err(|()| anyhow::anyhow!("unknown status {status:?} in users"))?,
            group: row.try_get("user_group")?,
            balance: Credits::from_units(balance),
            created_at: row.try_get("created_at")?,
            deleted_at: row.try_get("deleted_at")?,
        },
        password_hash: row.try_get("password_hash")?,
    })
}

pub async fn insert_user(
    db: &Db,
    username: &str,
    password_hash: &str,
    role: Role,
    now: i64,
) -> Result<i64, Error> {
    let mut tx = db.begin_write().await?;
    let id = Db::insert_id(
        db.backend(),
        sqlx::query(&db.sql(
            "INSERT INTO users (username, password_hash, role, status, user_group, balance, created_at, updated_at) \
             VALUES ($1, $2, $3, 'active', 'default', 0, $4, $5) RETURNING id",
        ))
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now)
        .bind(now),
        &mut *tx,
    )
    .await
    .map_err(|e| if is_unique_violation(&e) { Error::Conflict("username already exists") } else { e.into() })?;
    tx.commit().await?;
    Ok(id)
}

pub async fn find_by_username(db: &Db, username: &str) -> Result<Option<UserRow>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE username = $1");
    let row = sqlx::query(&db.sql(&sql))
        .bind(username)
        .fetch_optional(db.pool())
        .await?;
    row.as_ref().map(user_row).transpose()
}

pub async fn get(db: &Db, id: i64) -> Result<Option<UserInfo>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
    let row = sqlx::query(&db.sql(&sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?;
    Ok(row.as_ref().map(user_row).transpose()?.map(|r| r.info))
}

pub async fn list(db: &Db, limit: i64, offset: i64) -> Result<Vec<UserInfo>, Error> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2");
    let rows = sqlx::query(&db.sql(&sql))
        .bind(limit)
        .bind(offset)
        .fetch_all(db.pool())
        .await?;
    rows.iter().map(|r| user_row(r).map(|u| u.info)).collect()
}

pub async fn count_active_admins(db: &Db) -> Result<i64, Error> {
    Ok(sqlx::query_scalar(
        &db.sql("SELECT COUNT(*) FROM users WHERE role = 'admin' AND status = 'active'"),
    )
    .fetch_one(db.pool())
    .await?)
}

/// Ends every session of `user_id` inside `tx`.
async fn end_sessions(tx: &mut WriteTx, user_id: i64) -> Result<(), sqlx::Error> {
    sqlx::query(&tx.sql("DELETE FROM sessions WHERE user_id = $1"))
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Sets a user's status; disabling also ends every session of theirs, in the same transaction.
pub async fn set_status(db: &Db, id: i64, status: UserStatus, now: i64) -> Result<bool, Error> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(&db.sql("UPDATE users SET status = $1, updated_at = $2 WHERE id = $3"))
        .bind(status.as_str())
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if n == 1 && status == UserStatus::Disabled {
        end_sessions(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Deletes a user, in one transaction: the row stays
/// (disabled, with its deletion time), every key of theirs is disabled and every session ends.
/// False when there was no such user left to delete.
pub async fn mark_deleted(db: &Db, id: i64, now: i64) -> Result<bool, Error> {
    let mut tx = db.begin_write().await?;
    let n = sqlx::query(&db.sql(
        "UPDATE users SET status = 'disabled', deleted_at = $1, updated_at = $2 \
         WHERE id = $3 AND deleted_at IS NULL",
    ))
    .bind(now)
    .bind(now)
    .bind(id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 1 {
        sqlx::query(&db.sql("UPDATE api_keys SET status = 'disabled' WHERE user_id = $1"))
            .bind(id)
            .execute(&mut *tx)
            .await?;
        end_sessions(&mut tx, id).await?;
    }
    tx.commit().await?;
    Ok(n == 1)
}

/// Sets a user's role and/or group.
pub async fn update(
    db: &Db,
    id: i64,
    role: Option<Role>,
    group: Option<&str>,
    now: i64,
) -> Result<bool, Error> {
    Ok(db
        .write(
            sqlx::query(
                &db.sql("UPDATE users SET role = COALESCE($1, role), user_group = COALESCE($2, user_group), \
                 updated_at = $3 WHERE id = $4"),
            )
            .bind(role.map(Role::as_str))
            .bind(group)
            .bind(now)
            .bind(id),
        )
        .await?
        == 1)
}

pub struct SessionRecord {
    pub user: UserInfo,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub async fn insert_session(
    db: &Db,
    id: &str,
    user_id: i64,
    now: i64,
    expires_at: i64,
    ip: Option<&str>,
    user_agent: Option<&str>,
) -> Result<(), Error> {
    db.write(
        sqlx::query(
            &db.sql("INSERT INTO sessions (id, user_id, created_at, last_seen_at, expires_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)"),
        )
        .bind(id)
        .bind(user_id)
        .bind(now)
        .bind(now)
        .bind(expires_at)
        .bind(ip)
        .bind(user_agent),
    )
    .await?;
    Ok(())
}

pub async fn find_session(db: &Db, id: &str) -> Result<Option<SessionRecord>, Error> {
    let sql = "SELECT u.id, u.username, u.password_hash, u.role, u.status, u.user_group, u.balance, u.created_at, u.deleted_at, \
               s.created_at AS s_created, s.last_seen_at, s.expires_at \
               FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1";
    let Some(row) = sqlx::query(&db.sql(sql))
        .bind(id)
        .fetch_optional(db.pool())
        .await?
    else {
        return Ok(None);
    };
    Ok(Some(SessionRecord {
        user: user_row(&row)?.info,
        created_at: row.try_get("s_created")?,
        last_seen_at: row.try_get("last_seen_at")?,
        expires_at: row.try_get("expires_at")?,
    }))
}

pub async fn touch_session(db: &Db, id: &str, now: i64) -> Result<(), Error> {
    sqlx::query(&db.sql("UPDATE sessions SET last_seen_at = $1 WHERE id = $2"))
        .bind(now)
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Sets a user's password hash and ends their sessions but `keep` (none when empty), in one
/// transaction; how many ended.
pub async fn set_password(
    db: &Db,
    user_id: i64,
    hash: &str,
    keep: &str,
    now: i64,
) -> Result<u64, Error> {
    let mut tx = db.begin_write().await?;
    sqlx::query(&db.sql("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3"))
        .bind(hash)
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let ended = sqlx::query(&db.sql("DELETE FROM sessions WHERE user_id = $1 AND id <> $2"))
        .bind(user_id)
        .bind(keep)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    tx.commit().await?;
    Ok(ended)
}

/// Ends every session of a user; how many there were.
pub async fn delete_user_sessions(db: &Db, user_id: i64) -> Result<u64, Error> {
    Ok(db
        .write(sqlx::query(&db.sql("DELETE FROM sessions WHERE user_id = $1")).bind(user_id))
        .await?)
}

pub async fn delete_session(db: &Db, id: &str) -> Result<(), Error> {
    sqlx::query(&db.sql("DELETE FROM sessions WHERE id = $1"))
        .bind(id)
        .execute(db.pool())
        .await?;
    Ok(())
}

/// Deletes sessions past their absolute expiry or idle since `idle_before`.
pub async fn purge_sessions(db: &Db, now: i64, idle_before: i64) -> Result<u64, Error> {
    Ok(
        sqlx::query(&db.sql("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at < $2"))
            .bind(now)
            .bind(idle_before)
            .execute(db.pool())
            .await?
            .rows_affected(),
    )
}

/// Stores a password's new hash (the same password, Tollgate's algorithm): no session ends.
pub async fn rehash_password(db: &Db, user_id: i64, hash: &str, now: i64) -> Result<(), Error> {
    db.write(
        sqlx::query(&db.sql("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3"))
            .bind(hash)
            .bind(now)
            .bind(user_id),
    )
    .await?;
    Ok(())
}
