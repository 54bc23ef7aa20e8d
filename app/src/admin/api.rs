//! Admin server functions: each checks the role on the server, in `service::accounts`.
// A server function's arguments are its form's fields (a channel has seventeen).
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use leptos::prelude::*;
use types::UserInfo;

#[server(prefix = "/_sfn", endpoint = "admin/users")]
pub async fn list_users() -> Result<Vec<UserInfo>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::accounts::list_users(&svc, &actor, 500, 0).await?)
}

/// One user's account, keys, 30 days of usage and a page of their ledger (`cursor`: older).
#[server(prefix = "/_sfn", endpoint = "admin/user")]
pub async fn user_detail(id: i64, cursor: Option<String>) -> Result<types::UserDetail, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let page = types::LedgerQuery {
        cursor,
        limit: Some("25".into()),
    };
    Ok(service::views::admin::user_detail(&svc, &actor, id, &page).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/create_user")]
pub async fn create_user(
    username: String,
    password: String,
    role: String,
) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let role = role
        .parse()
        .map_err(|()| service::Error::invalid("role", "must be user or admin"))?;
    let new = types::NewUser {
        username,
        password,
        role,
    };
    Ok(service::accounts::create_user(&svc, &actor, new).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/set_user_status")]
pub async fn set_user_status(id: i64, status: String) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let status = status
        .parse()
        .map_err(|()| service::Error::invalid("status", "must be active or disabled"))?;
    Ok(service::accounts::set_user_status(&svc, &actor, id, status).await?)
}

/// Resets a user's password: `password`, or empty to have one made (in the answer, once).
#[server(prefix = "/_sfn", endpoint = "admin/reset_password")]
pub async fn reset_password(
    id: i64,
    password: String,
) -> Result<types::PasswordWasReset, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let reset = types::PasswordReset {
        password: Some(password).filter(|p| !p.is_empty()),
    };
    Ok(service::accounts::reset_password(&svc, &actor, id, reset).await?)
}

/// Deletes a user (their keys stop, their ledger and logs stay).
#[server(prefix = "/_sfn", endpoint = "admin/delete_user")]
pub async fn delete_user(id: i64) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::accounts::delete_user(&svc, &actor, id).await?)
}

/// Changes a user's role and price group (empty: unchanged).
#[server(prefix = "/_sfn", endpoint = "admin/update_user")]
pub async fn update_user(id: i64, role: String, group: String) -> Result<UserInfo, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let role = match role.trim() {
        "" => None,
        r => Some(
            r.parse()
                .map_err(|()| service::Error::invalid("role", "must be user or admin"))?,
        ),
    };
    let group = Some(group.trim().to_string()).filter(|g| !g.is_empty());
    let patch = types::UserPatch { role, group };
    Ok(service::accounts::update_user(&svc, &actor, id, patch).await?)
}

/// Adds (or, negative, removes) money with a reason the user sees in their ledger.
#[server(prefix = "/_sfn", endpoint = "admin/adjust_balance")]
pub async fn adjust_balance(
    user_id: i64,
    amount: String,
    reason: String,
) -> Result<types::Credits, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::billing::adjust_balance(&svc, &actor, user_id, amount.trim(), &reason).await?)
}

/// A page of every user's keys, newest first: `owner` a user id or empty, `status` `active`,
/// `disabled`, `expiring` or empty, `cursor` to continue.
#[server(prefix = "/_sfn", endpoint = "admin/keys")]
pub async fn all_keys(
    owner: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
) -> Result<types::Slice<types::KeyView>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let user_id = match owner.as_deref().unwrap_or_default().trim() {
        "" => None,
        o => Some(
            o.parse()
                .map_err(|_| service::Error::invalid("user_id", "not a user id"))?,
        ),
    };
    let q = types::KeysQuery {
        user_id,
        status,
        cursor,
        limit: Some("50".into()),
    };
    Ok(service::keys::page(&svc, &actor, &q).await?)
}

/// Enables (`active`) or disables (`disabled`) anyone's key.
#[server(prefix = "/_sfn", endpoint = "admin/key_status")]
pub async fn admin_key_status(id: i64, status: String) -> Result<types::KeyView, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let active = match status.as_str() {
        "active" => true,
        "disabled" => false,
        _ => return Err(service::Error::invalid("status", "must be active or disabled").into()),
    };
    Ok(service::keys::set_status(&svc, &actor, id, active).await?)
}

/// Deletes anyone's key.
#[server(prefix = "/_sfn", endpoint = "admin/delete_key")]
pub async fn admin_delete_key(id: i64) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::keys::delete(&svc, &actor, id).await?)
}

/// Creates a batch of redeem codes: count, value (USD), an optional last day (`YYYY-MM-DD`,
/// the codes work through its end, UTC) and label. The codes are in the answer, this once.
#[server(prefix = "/_sfn", endpoint = "admin/create_batch")]
pub async fn create_batch(
    count: String,
    value: String,
    expires_on: String,
    label: String,
) -> Result<types::CreatedRedeemBatch, AppError> {
    use crate::ssr::*;
    use service::Error;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let count = count
        .trim()
        .parse::<u32>()
        .map_err(|_| Error::invalid("count", "must be a whole number"))?;
    let expires_at = match expires_on.trim() {
        "" => None,
        day => Some(
            (types::date::parse_day(day)
                .ok_or(Error::invalid("expires_at", "not a YYYY-MM-DD date"))?
                + 1)
                * 86_400,
        ),
    };
    let new = types::NewRedeemBatch {
        count,
        value: value.trim().to_string(),
        expires_at,
        batch: Some(label),
    };
    Ok(service::redeem::create_batch(&svc, &actor, new).await?)
}

/// A page of redeem batches with their counts, newest first.
#[server(prefix = "/_sfn", endpoint = "admin/batches")]
pub async fn list_batches(
    cursor: Option<String>,
) -> Result<types::Slice<types::RedeemBatch>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::redeem::list_batches(&svc, &actor, cursor.as_deref(), Some("20")).await?)
}

/// A page of one batch's codes, newest first.
#[server(prefix = "/_sfn", endpoint = "admin/codes")]
pub async fn batch_codes(
    batch: i64,
    cursor: Option<String>,
) -> Result<types::Slice<types::RedeemCodeView>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let batch = batch.to_string();
    Ok(service::redeem::list_codes(
        &svc,
        &actor,
        Some(batch.as_str()),
        None,
        cursor.as_deref(),
        Some("100"),
    )
    .await?)
}

/// Voids a batch's unused codes; returns how many.
#[server(prefix = "/_sfn", endpoint = "admin/void_batch")]
pub async fn void_batch(id: i64) -> Result<u64, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::redeem::void_batch(&svc, &actor, id).await?)
}

/// Voids one unused code.
#[server(prefix = "/_sfn", endpoint = "admin/void_code")]
pub async fn void_code(id: i64) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::redeem::void_code(&svc, &actor, id).await?)
}

/// The prices in force, and the group multipliers.
#[server(prefix = "/_sfn", endpoint = "admin/prices")]
pub async fn admin_prices() -> Result<(Vec<types::PriceView>, Vec<types::GroupView>), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let groups = service::catalog::groups(&svc, &actor)?;
    Ok((service::catalog::list_prices(&svc, &actor).await?, groups))
}

/// Sets a model's price (a new version, served at once) from the form's text fields: an empty
/// optional rate falls back (see `PriceConfig`), an empty max output is none. Tiers come as
/// parallel lists, one entry per row (`tier_above[]`, `tier_input[]`…); a row left empty is
/// no tier.
#[server(prefix = "/_sfn", endpoint = "admin/set_price")]
#[allow(clippy::too_many_arguments)]
pub async fn set_price(
    model: String,
    input_per_1m: String,
    output_per_1m: String,
    cached_input_per_1m: String,
    per_request: String,
    #[server(default)] cache_write_5m_per_1m: String,
    #[server(default)] cache_write_1h_per_1m: String,
    #[server(default)] reasoning_per_1m: String,
    #[server(default)] image_input_per_1m: String,
    #[server(default)] image_output_per_1m: String,
    #[server(default)] audio_input_per_1m: String,
    #[server(default)] audio_output_per_1m: String,
    #[server(default)] max_output_tokens: String,
    #[server(default)] tier_above: Vec<String>,
    #[server(default)] tier_input: Vec<String>,
    #[server(default)] tier_output: Vec<String>,
    #[server(default)] tier_cached: Vec<String>,
    #[server(default)] tier_write_5m: Vec<String>,
    #[server(default)] tier_write_1h: Vec<String>,
) -> Result<types::PriceView, AppError> {
    use crate::ssr::*;
    use service::Error;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let opt = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let count = |field: &'static str, text: &str| -> Result<Option<u64>, Error> {
        match text.trim() {
            "" => Ok(None),
            t => t
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(field, "must be a whole number of tokens")),
        }
    };
    fn cell(list: &[String], i: usize) -> &str {
        list.get(i).map(String::as_str).unwrap_or_default()
    }
    let mut tiers = Vec::new();
    for i in 0..tier_above.len() {
        let row = [
            &tier_above,
            &tier_input,
            &tier_output,
            &tier_cached,
            &tier_write_5m,
            &tier_write_1h,
        ]
        .map(|list| cell(list, i));
        if row.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        tiers.push(service::config::PriceConfig {
            above_tokens: Some(count("tiers", row[0])?.unwrap_or(0)),
            input_per_1m: row[1].trim().to_string(),
            output_per_1m: row[2].trim().to_string(),
            cached_input_per_1m: opt(row[3]),
            cache_write_5m_per_1m: opt(row[4]),
            cache_write_1h_per_1m: opt(row[5]),
            ..Default::default()
        });
    }
    let price = service::config::PriceConfig {
        input_per_1m: input_per_1m.trim().to_string(),
        output_per_1m: output_per_1m.trim().to_string(),
        cached_input_per_1m: opt(&cached_input_per_1m),
        cache_write_5m_per_1m: opt(&cache_write_5m_per_1m),
        cache_write_1h_per_1m: opt(&cache_write_1h_per_1m),
        reasoning_per_1m: opt(&reasoning_per_1m),
        image_input_per_1m: opt(&image_input_per_1m),
        image_output_per_1m: opt(&image_output_per_1m),
        audio_input_per_1m: opt(&audio_input_per_1m),
        audio_output_per_1m: opt(&audio_output_per_1m),
        per_request: opt(&per_request),
        max_output_tokens: count("max_output_tokens", &max_output_tokens)?,
        tiers,
        above_tokens: None,
    };
    Ok(service::catalog::set_price(&svc, &actor, model.trim(), price).await?)
}

/// Sets a group's price multiplier.
/// A model's price versions, newest first.
#[server(prefix = "/_sfn", endpoint = "admin/price_history")]
pub async fn price_history(model: String) -> Result<Vec<types::PriceVersion>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::price_history(&svc, &actor, &model).await?)
}

/// Ends a model's price (its history stays).
#[server(prefix = "/_sfn", endpoint = "admin/delete_price")]
pub async fn delete_price(model: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::delete_price(&svc, &actor, &model).await?)
}

/// Removes a group's multiplier set through the console or the API.
#[server(prefix = "/_sfn", endpoint = "admin/delete_group")]
pub async fn delete_group(name: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::delete_group(&svc, &actor, &name).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/set_group")]
pub async fn set_group(name: String, multiplier: String) -> Result<types::GroupView, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::set_group(&svc, &actor, name.trim(), multiplier.trim()).await?)
}

/// A page of the audit log, newest first, filtered by action (or kind) and actor.
#[server(prefix = "/_sfn", endpoint = "admin/audit")]
pub async fn audit_log(
    action: String,
    actor: String,
    cursor: Option<String>,
) -> Result<types::Slice<types::AuditEntry>, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: admin } = Ctx::admin().await?;
    let q = types::AuditQuery {
        action: Some(action),
        actor: Some(actor),
        target: None,
        cursor,
        limit: Some("50".into()),
    };
    Ok(service::audit::list(&svc.db, &admin, &q).await?)
}

/// The channels, and each one's health as this instance has seen it.
#[server(prefix = "/_sfn", endpoint = "admin/channels")]
pub async fn admin_channels()
-> Result<(Vec<types::ChannelView>, Vec<types::ChannelHealth>), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let health = service::catalog::channel_health(&svc, &actor).await?;
    Ok((service::catalog::list_channels(&svc, &actor).await?, health))
}

/// Creates a channel (no `id`) or changes one. An empty `api_key` keeps the stored one; models
/// are separated by commas, spaces or lines; `enabled` is `on` when checked.
#[server(prefix = "/_sfn", endpoint = "admin/save_channel")]
pub async fn save_channel(
    id: Option<i64>,
    name: String,
    kind: String,
    base_url: String,
    api_version: Option<String>,
    max_tokens_field: Option<String>,
    stream_usage: Option<String>,
    api_key: String,
    models: String,
    priority: String,
    weight: String,
    first_byte_timeout_ms: String,
    answer_timeout_ms: String,
    connect_timeout_ms: String,
    idle_timeout_ms: String,
    enabled: Option<String>,
    groups: Option<String>,
) -> Result<types::ChannelView, AppError> {
    use crate::ssr::*;
    use service::Error;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let number = |field: &'static str, text: &str, default: i64| -> Result<i64, Error> {
        match text.trim() {
            "" => Ok(default),
            t => t
                .parse()
                .map_err(|_| Error::invalid(field, "must be a whole number")),
        }
    };
    let positive = |field: &'static str, v: i64| -> Result<u64, Error> {
        u64::try_from(v)
            .ok()
            .filter(|v| *v > 0)
            .ok_or(Error::invalid(field, "must be at least 1"))
    };
    let input = service::routing::ChannelInput {
        name: name.trim().to_string(),
        kind: types::ChannelKind::parse(kind.trim()).ok_or_else(|| {
            let kinds = types::ChannelKind::ALL.map(types::ChannelKind::as_str);
            Error::invalid("kind", format!("must be one of {}", kinds.join(", ")))
        })?,
        base_url: base_url.trim().to_string(),
        api_version: api_version
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty()),
        max_tokens_field: match max_tokens_field.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(types::BoundField::parse(f).ok_or(Error::invalid(
                "max_tokens_field",
                "must be max_tokens or max_completion_tokens",
            ))?),
        },
        stream_usage: stream_usage.is_some(),
        api_key: Some(api_key.trim().to_string())
            .filter(|k| !k.is_empty())
            .map(service::secret::SecretString::new),
        models: words(&models),
        groups: words(groups.as_deref().unwrap_or_default()),
        priority: number("priority", &priority, 0)?,
        weight: u32::try_from(positive("weight", number("weight", &weight, 1)?)?)
            .map_err(|_| Error::invalid("weight", "too large"))?,
        connect_timeout_ms: positive(
            "connect_timeout_ms",
            number("connect_timeout_ms", &connect_timeout_ms, 5_000)?,
        )?,
        first_byte_timeout_ms: positive(
            "first_byte_timeout_ms",
            number("first_byte_timeout_ms", &first_byte_timeout_ms, 60_000)?,
        )?,
        answer_timeout_ms: positive(
            "answer_timeout_ms",
            number("answer_timeout_ms", &answer_timeout_ms, 600_000)?,
        )?,
        idle_timeout_ms: positive(
            "idle_timeout_ms",
            number("idle_timeout_ms", &idle_timeout_ms, 120_000)?,
        )?,
        enabled: enabled.is_some(),
    };
    Ok(service::catalog::save_channel(&svc, &actor, id, input).await?)
}

/// A list as typed in a text field: split at commas and white space.
#[cfg(feature = "ssr")]
fn words(text: &str) -> Vec<String> {
    text.split([',', ' ', '\n', '\r', '\t'])
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Turns a channel on or off, everything else kept (its key too).
#[server(prefix = "/_sfn", endpoint = "admin/toggle_channel")]
pub async fn toggle_channel(id: i64, enabled: bool) -> Result<types::ChannelView, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let c = service::catalog::list_channels(&svc, &actor)
        .await?
        .into_iter()
        .find(|c| c.id == id)
        .ok_or(service::Error::NotFound("channel"))?;
    let input = service::routing::ChannelInput {
        name: c.name,
        kind: c.kind,
        base_url: c.base_url,
        api_version: c.api_version,
        max_tokens_field: c.max_tokens_field,
        stream_usage: c.stream_usage,
        api_key: None,
        models: c.models,
        priority: c.priority,
        weight: c.weight,
        connect_timeout_ms: c.connect_timeout_ms,
        first_byte_timeout_ms: c.first_byte_timeout_ms,
        answer_timeout_ms: c.answer_timeout_ms,
        idle_timeout_ms: c.idle_timeout_ms,
        enabled,
        groups: c.groups,
    };
    Ok(service::catalog::save_channel(&svc, &actor, Some(id), input).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/delete_channel")]
pub async fn delete_channel(id: i64) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::delete_channel(&svc, &actor, id).await?)
}

/// A tiny live request through the channel; what the upstream did.
#[server(prefix = "/_sfn", endpoint = "admin/test_channel")]
pub async fn test_channel(id: i64, model: String) -> Result<types::ChannelTest, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::test_channel(&svc, &actor, id, Some(&model)).await?)
}

/// The model mappings, with the channels and prices to warn about targets nothing serves and
/// models without a price.
#[server(prefix = "/_sfn", endpoint = "admin/mappings")]
pub async fn admin_mappings() -> Result<
    (
        Vec<types::Mapping>,
        Vec<types::ChannelView>,
        Vec<types::PriceView>,
    ),
    AppError,
> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok((
        service::catalog::list_mappings(&svc, &actor).await?,
        service::catalog::list_channels(&svc, &actor).await?,
        service::catalog::list_prices(&svc, &actor).await?,
    ))
}

/// Sets a public model's ordered upstream list: targets separated by commas, spaces or lines.
#[server(prefix = "/_sfn", endpoint = "admin/set_mapping")]
pub async fn set_mapping(model: String, targets: String) -> Result<types::Mapping, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let targets = targets
        .split([',', ' ', '\n', '\r', '\t'])
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect();
    Ok(service::catalog::set_mapping(&svc, &actor, model.trim(), targets).await?)
}

#[server(prefix = "/_sfn", endpoint = "admin/delete_mapping")]
pub async fn delete_mapping(model: String) -> Result<(), AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::catalog::delete_mapping(&svc, &actor, &model).await?)
}

/// Appends an upstream model name to a public model's list (its last fallback).
#[server(prefix = "/_sfn", endpoint = "admin/add_target")]
pub async fn add_target(model: String, target: String) -> Result<types::Mapping, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let mut targets = service::catalog::list_mappings(&svc, &actor)
        .await?
        .into_iter()
        .find(|m| m.model == model)
        .ok_or(service::Error::NotFound("mapping"))?
        .targets;
    let target = target.trim().to_string();
    if targets.contains(&target) {
        return Err(service::Error::invalid("targets", "already in the list").into());
    }
    targets.push(target);
    Ok(service::catalog::set_mapping(&svc, &actor, &model, targets).await?)
}

/// Sets a key's spend cap (USD), RPM, TPM and calls in flight; an empty field clears it (the
/// group's or the default limit applies, no cap).
#[server(prefix = "/_sfn", endpoint = "admin/key_limits")]
pub async fn key_limits(
    id: i64,
    spend_cap: String,
    rpm: String,
    tpm: String,
    #[server(default)] max_concurrent: String,
) -> Result<types::KeyView, AppError> {
    use crate::ssr::*;
    use service::Error;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let number = |field: &'static str, text: &str| -> Result<Option<i64>, Error> {
        match text.trim() {
            "" => Ok(None),
            t => t
                .parse()
                .map(Some)
                .map_err(|_| Error::invalid(field, "must be a whole number")),
        }
    };
    let patch = types::KeyPatch {
        spend_cap: Some(Some(spend_cap.trim().to_string()).filter(|c| !c.is_empty())),
        rpm: Some(number("rpm", &rpm)?),
        tpm: Some(number("tpm", &tpm)?),
        max_concurrent: Some(number("max_concurrent", &max_concurrent)?),
        ..Default::default()
    };
    Ok(service::keys::update(&svc, &actor, id, patch).await?)
}

/// The gateway at a glance.
#[server(prefix = "/_sfn", endpoint = "admin/overview")]
pub async fn admin_overview() -> Result<types::AdminOverview, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::views::admin::overview(&svc, &actor).await?)
}

/// The system's alert settings and latest alerts (channels, ledger drift).
#[server(prefix = "/_sfn", endpoint = "admin/alerts")]
pub async fn system_alerts() -> Result<types::Alerts, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::alerts::system(&svc, &actor).await?)
}

/// Sets the system's alerts: what is sent (`channels`, `ledger_drift` checked) and where.
#[server(prefix = "/_sfn", endpoint = "admin/set_alerts")]
pub async fn set_system_alerts(
    #[server(default)] email: String,
    webhook_url: String,
    webhook_secret: String,
    channels: Option<String>,
    ledger_drift: Option<String>,
) -> Result<types::Alerts, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let settings = types::AlertSettings {
        channels: channels.is_some(),
        ledger_drift: ledger_drift.is_some(),
        ..crate::account::api::alert_targets(email, webhook_url, webhook_secret)
    };
    Ok(service::alerts::set_system(&svc, &actor, settings).await?)
}

/// The scheduled jobs with their latest runs, and the archived days of call logs. The archive
/// list is empty (with the reason) when the object store does not answer.
#[server(prefix = "/_sfn", endpoint = "admin/jobs")]
pub async fn admin_jobs() -> Result<
    (
        Vec<types::JobView>,
        Result<Vec<types::ArchiveDay>, AppError>,
    ),
    AppError,
> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    let jobs = service::jobs::list(&svc, &actor).await?;
    let archives = service::jobs::list_archives(&svc, &actor)
        .await
        .map_err(AppError::from);
    Ok((jobs, archives))
}

/// Runs a job now on this instance; the run as it started.
#[server(prefix = "/_sfn", endpoint = "admin/run_job")]
pub async fn run_job(name: String) -> Result<types::JobRun, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: actor } = Ctx::admin().await?;
    Ok(service::jobs::run_now(&svc, &actor, &name).await?)
}
