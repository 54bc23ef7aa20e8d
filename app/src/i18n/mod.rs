//! Every string the console shows goes through [`t`] (or the [`t!`](crate::t) macro): one table
//! per language, English for now (the user-console issue adds 简体中文). Errors are shown by
//! their code ([`error_text`]), never by the server's English message.

use types::ErrorInfo;

/// The English text of `key`; an unknown key shows as itself (and fails the table's test).
pub fn t(key: &'static str) -> &'static str {
    EN.iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, text)| text)
}

/// `t!(key)`, with a literal key: the current language's text of it.
#[macro_export]
macro_rules! t {
    ($key:literal) => {
        $crate::i18n::t($key)
    };
}

/// What the console says about an error: its code's text, and the field it concerns.
pub fn error_text(e: &ErrorInfo) -> String {
    let base = match e.code() {
        "invalid_request" => t("error.invalid_request"),
        "unauthorized" => t("error.unauthorized"),
        "insufficient_quota" => t("error.insufficient_quota"),
        "forbidden" => t("error.forbidden"),
        "not_found" | "model_not_found" => t("error.not_found"),
        "conflict" => t("error.conflict"),
        "payload_too_large" => t("error.payload_too_large"),
        "rate_limit_exceeded" => t("error.rate_limited"),
        "service_unavailable" | "bad_gateway" | "gateway_timeout" => t("error.unavailable"),
        _ if e.kind == types::ErrorKind::Transport => t("error.transport"),
        _ => t("error.internal"),
    };
    match &e.param {
        Some(field) => format!("{base} ({}: {field})", t("error.field")),
        None => base.to_string(),
    }
}

/// A role as the console names it.
pub fn role_text(role: types::Role) -> &'static str {
    match role {
        types::Role::Admin => crate::t!("role.admin"),
        types::Role::User => crate::t!("role.user"),
    }
}

/// An account status as the console names it.
pub fn status_text(status: types::UserStatus) -> &'static str {
    match status {
        types::UserStatus::Active => crate::t!("status.active"),
        types::UserStatus::Disabled => crate::t!("status.disabled"),
    }
}

/// The English table.
const EN: &[(&str, &str)] = &[
    ("app.name", "Tollgate"),
    ("app.loading", "Loading…"),
    ("nav.dashboard", "Dashboard"),
    ("nav.users", "Users"),
    ("nav.sign_out", "Sign out"),
    ("nav.sign_in", "Sign in"),
    ("nav.docs", "API"),
    ("nav.keys", "API keys"),
    ("nav.billing", "Billing"),
    ("nav.pricing", "Pricing"),
    ("billing.title", "Billing"),
    (
        "billing.lead",
        "Add credit with a redeem code; every change of your balance is listed below.",
    ),
    ("billing.redeem", "Redeem a code"),
    ("billing.code", "Redeem code"),
    ("billing.redeem_button", "Redeem"),
    ("billing.credited", "Credited"),
    ("billing.new_balance", "New balance:"),
    ("billing.ledger", "Balance history"),
    ("billing.empty", "No balance changes yet."),
    ("billing.newest", "Newest"),
    ("billing.older", "Older"),
    ("billing.col_when", "When (UTC)"),
    ("billing.col_kind", "Kind"),
    ("billing.col_about", "About"),
    ("billing.col_amount", "Amount"),
    ("billing.col_balance", "Balance after"),
    ("billing.kind_credit", "Credit"),
    ("billing.kind_charge", "Usage"),
    ("billing.kind_adjustment", "Adjustment"),
    ("billing.kind_refund", "Refund"),
    ("billing.kind_other", "Other"),
    ("billing.redeemed_code", "Redeem code"),
    ("pricing.title", "Pricing"),
    (
        "pricing.lead",
        "What each model costs, in USD per million tokens and per request.",
    ),
    ("pricing.group", "Group"),
    ("pricing.multiplier", "multiplier"),
    ("pricing.search", "Search models"),
    ("pricing.col_model", "Model"),
    ("pricing.col_input", "Input / 1M"),
    ("pricing.col_output", "Output / 1M"),
    ("pricing.col_cached", "Cached input / 1M"),
    ("pricing.col_request", "Per request"),
    ("pricing.none", "No model matches."),
    (
        "pricing.units",
        "Prices include your group's multiplier. Charges are exact to a millionth of a dollar.",
    ),
    ("keys.title", "API keys"),
    (
        "keys.lead",
        "Keys let programs call the gateway on your account. Keep them secret.",
    ),
    ("keys.yours", "Your keys"),
    (
        "keys.none",
        "No keys yet. Create one above to make your first call.",
    ),
    ("keys.new", "New key"),
    ("keys.name", "Name"),
    ("keys.expires", "Expires after (UTC day, optional)"),
    ("keys.cap", "Spend cap in USD (optional)"),
    ("keys.rpm", "Requests per minute (optional)"),
    ("keys.tpm", "Tokens per minute (optional)"),
    ("keys.ips", "Allowed client IPs or ranges (optional)"),
    ("keys.models", "Allowed models"),
    ("keys.models_hint", "None ticked: every model you can use."),
    ("keys.no_models", "No models are available yet."),
    ("keys.create", "Create key"),
    ("keys.created", "Key created:"),
    ("keys.once", "Copy it now: you will not see this key again."),
    ("keys.copy", "Copy"),
    ("keys.copied", "Copied"),
    ("keys.done", "I have saved it"),
    ("keys.col_name", "Name"),
    ("keys.col_key", "Key"),
    ("keys.col_status", "Status"),
    ("keys.col_models", "Models"),
    ("keys.col_spent", "Spent / cap"),
    ("keys.col_limits", "Limits"),
    ("keys.col_expires", "Expires"),
    ("keys.col_last_used", "Last used"),
    ("keys.all_models", "All"),
    ("keys.default_limits", "Account default"),
    ("keys.never", "Never"),
    ("keys.disable", "Disable"),
    ("keys.enable", "Enable"),
    ("keys.delete", "Delete"),
    ("keys.confirm_delete", "Delete for good?"),
    ("keys.delete_yes", "Yes, delete"),
    ("keys.delete_no", "Cancel"),
    ("docs.title", "API reference"),
    (
        "docs.lead",
        "Every route of /v1, /api and /api/admin, generated from the server's handlers. The same document as JSON:",
    ),
    ("docs.search", "Search paths and summaries"),
    ("docs.schemas", "Schemas"),
    ("docs.public", "none (public)"),
    ("docs.auth", "Credentials"),
    ("docs.params", "Parameters"),
    ("docs.body", "Request body"),
    ("docs.responses", "Responses"),
    ("auth.sign_in_title", "Sign in to Tollgate"),
    ("auth.register_title", "Create an account"),
    ("auth.username", "Username"),
    ("auth.password", "Password"),
    ("auth.show_password", "Show password"),
    ("auth.sign_in", "Sign in"),
    ("auth.create_account", "Create account"),
    ("auth.have_account", "I have an account"),
    ("auth.want_account", "Create an account"),
    ("dash.title", "Dashboard"),
    ("dash.signed_in_as", "Signed in as "),
    ("dash.balance", "Balance"),
    ("dash.units", " units"),
    ("dash.show_usd", "Show in USD"),
    ("dash.show_units", "Show in units"),
    ("dash.role", "Role"),
    ("dash.group", "Group "),
    ("dash.status", "Status"),
    ("admin.title", "Users"),
    (
        "admin.lead",
        "Accounts, roles and access. Administrators only.",
    ),
    ("admin.create", "Create a user"),
    ("admin.new_username", "New username"),
    ("admin.new_password", "New password"),
    ("admin.username_hint", "username"),
    ("admin.password_hint", "password (8+ characters)"),
    ("admin.role", "Role"),
    ("admin.create_button", "Create"),
    ("admin.all_users", "All users"),
    ("admin.filter", "Filter by username"),
    ("admin.filter_label", "Filter users"),
    ("admin.col_id", "ID"),
    ("admin.col_username", "Username"),
    ("admin.col_role", "Role"),
    ("admin.col_status", "Status"),
    ("admin.col_balance", "Balance"),
    ("admin.disable", "Disable"),
    ("admin.enable", "Enable"),
    ("role.user", "user"),
    ("role.admin", "admin"),
    ("status.active", "active"),
    ("status.disabled", "disabled"),
    ("guard.forbidden_title", "403 · Administrators only"),
    (
        "guard.forbidden_text",
        "Your account cannot open this page.",
    ),
    ("guard.error_title", "Something went wrong"),
    ("notfound.title", "404"),
    ("notfound.text", "There is no page here."),
    ("notfound.back", "Back to the dashboard"),
    ("error.invalid_request", "Some input is not valid"),
    ("error.field", "field"),
    (
        "error.unauthorized",
        "Not signed in, or invalid username or password",
    ),
    ("error.insufficient_quota", "The balance is too low"),
    ("error.forbidden", "This is not allowed for your account"),
    ("error.not_found", "Not found"),
    (
        "error.conflict",
        "That conflicts with what is already there",
    ),
    ("error.payload_too_large", "That is too large"),
    ("error.rate_limited", "Too many attempts; try again later"),
    (
        "error.unavailable",
        "The service is temporarily unavailable; try again shortly",
    ),
    ("error.transport", "The server could not be reached"),
    ("error.internal", "An internal error occurred"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_has_a_text_and_keys_are_unique() {
        let mut keys: Vec<&str> = EN.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        let n = keys.len();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key is in the table twice");
        assert!(EN.iter().all(|(_, text)| !text.is_empty()));
        assert_eq!(t("nav.users"), "Users");
        assert_eq!(t("no.such.key"), "no.such.key");
    }

    #[test]
    fn every_key_the_console_uses_is_in_the_table() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut missing = Vec::new();
        let mut stack = vec![src];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).expect("src") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).expect("source");
                // The macro itself, not the end of a longer name such as `format!`.
                for (at, _) in text.match_indices("t!(\"") {
                    let before = text[..at].chars().next_back().unwrap_or(' ');
                    if before.is_alphanumeric() || before == '_' {
                        continue;
                    }
                    let key = text[at + 4..].split('"').next().unwrap_or_default();
                    if !EN.iter().any(|(k, _)| *k == key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(missing.is_empty(), "keys without a text: {missing:?}");
    }

    #[test]
    fn errors_are_told_by_their_code_and_field() {
        let mut e = ErrorInfo::new(types::ErrorKind::Invalid, "invalid username: too short");
        e.param = Some("username".into());
        assert_eq!(error_text(&e), "Some input is not valid (field: username)");
        let e = ErrorInfo::new(types::ErrorKind::Unauthorized, "x");
        assert!(error_text(&e).contains("invalid username or password"));
        let e = ErrorInfo::new(types::ErrorKind::Transport, "x");
        assert_eq!(error_text(&e), "The server could not be reached");
    }
}
