//! The keys page's two reads, each drawn on the server in the reader's language (`draw`): the
//! user's keys and the creation form. The forms they draw post to the actions in `api`.

use crate::error::AppError;
use leptos::prelude::*;

/// The signed-in user's keys, drawn in the reader's language (see `draw`).
#[server(prefix = "/_sfn", endpoint = "me/keys")]
pub async fn my_keys() -> Result<String, AppError> {
    use crate::ssr::*;
    let Ctx { svc, who: user } = Ctx::user().await?;
    let id = user.id;
    let keys = service::keys::list(&svc, &service::accounts::Actor::User(user), Some(id)).await?;
    Ok(super::draw::draw(keys, request_lang()))
}

/// The form that creates a key, drawn in the reader's language, with the models the
/// signed-in user may call as boxes to tick (to restrict the key to some of them).
///
/// A key just created by a form posted without JavaScript is drawn above it, this once: the
/// browser went back to the page, which could not carry the server function's answer, so the
/// secret came along in a cookie only this page receives (see
/// [`create_key`](super::api::create_key)); it is removed
/// here, and shown only when it is the secret of one of the user's own keys.
#[server(prefix = "/_sfn", endpoint = "me/key_form")]
pub async fn key_form() -> Result<String, AppError> {
    use super::api::{NEW_KEY_COOKIE, new_key_cookie};
    use crate::ssr::*;
    let Ctx { svc, who } = Ctx::user().await?;
    let returned = cookie(NEW_KEY_COOKIE);
    if returned.is_some() {
        set_cookie(&new_key_cookie(&svc, "", 0));
        no_store();
    }
    let form = service::views::pages::key_form(&svc, &who, returned).await?;
    Ok(super::draw::form(form.models, form.fresh, request_lang()))
}
