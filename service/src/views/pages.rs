//! The console's page models: what one page shows, read in one call, so that its server
//! function is an adapter that draws it. Each reads only what its reader may see.

use crate::actor::{Actor, AuthUser};
use crate::{Error, Services, now_ms};
use types::{CallsQuery, KeySecret, KeyView, Slice, UsagePoint, UsageQuery, UsageRow, UserInfo};

/// The dashboard: the last 30 days by model and by key, the latest failed calls, the keys.
pub struct Dashboard {
    pub user: UserInfo,
    /// Today (UTC), `YYYY-MM-DD`.
    pub today: String,
    pub by_model: Vec<UsagePoint>,
    pub by_key: Vec<UsagePoint>,
    /// The five latest failed calls.
    pub errors: Vec<UsageRow>,
    /// The user's keys: id, name and display prefix.
    pub keys: Vec<(i64, String, String)>,
    /// A model the user may call, for the first-call example.
    pub example_model: Option<String>,
}

pub async fn dashboard(svc: &Services, auth: &AuthUser) -> Result<Dashboard, Error> {
    let user = crate::accounts::me(svc, auth).await?;
    let today = now_ms().div_euclid(86_400_000);
    let range = |by: &str| UsageQuery {
        from: Some(types::date::format_day(today - 29)),
        to: Some(types::date::format_day(today)),
        by: Some(by.to_string()),
        utc_offset_minutes: None,
    };
    let by_model = crate::usage::daily(svc, user.id, &range("model")).await?;
    let by_key = crate::usage::daily(svc, user.id, &range("key")).await?;
    let errors = crate::usage::my_calls(
        svc,
        user.id,
        &CallsQuery {
            status: Some("error".into()),
            limit: Some("5".into()),
            ..CallsQuery::default()
        },
    )
    .await?
    .data;
    let keys = crate::keys::list(svc, &Actor::User(auth.clone()), Some(user.id))
        .await?
        .into_iter()
        .map(|k| (k.id, k.name, k.prefix))
        .collect();
    let example_model = crate::proxy::offer(svc, None, &user.group)
        .into_iter()
        .next()
        .map(|(m, _)| m);
    Ok(Dashboard {
        user,
        today: types::date::format_day(today),
        by_model,
        by_key,
        errors,
        keys,
        example_model,
    })
}

/// The form that makes a key: the models the user may call, and the secret of a key just made
/// by a form posted without JavaScript, when `returned` is one of the user's own keys' secrets.
pub struct KeyForm {
    pub models: Vec<String>,
    pub fresh: Option<KeySecret>,
}

pub async fn key_form(
    svc: &Services,
    auth: &AuthUser,
    returned: Option<String>,
) -> Result<KeyForm, Error> {
    let fresh = match returned {
        None => None,
        Some(secret) => match crate::keys::own_key_id(svc, auth.id, &secret).await? {
            None => None,
            Some(id) => crate::keys::list(svc, &Actor::User(auth.clone()), Some(auth.id))
                .await?
                .into_iter()
                .find(|k| k.id == id)
                .map(|k| KeySecret {
                    name: k.name,
                    key: secret,
                }),
        },
    };
    let user = crate::accounts::me(svc, auth).await?;
    let models = crate::proxy::offer(svc, None, &user.group)
        .into_iter()
        .map(|(model, _)| model)
        .collect();
    Ok(KeyForm { models, fresh })
}

/// The call log: the page of calls the filters ask for (or why the filters are wrong, shown on
/// the page), the keys and, for administrators, the users the filters offer.
pub struct Calls {
    pub users: Option<Vec<UserInfo>>,
    pub keys: Vec<KeyView>,
    pub calls: Result<Slice<UsageRow>, Error>,
}

/// The signed-in user's own calls.
pub async fn my_calls(svc: &Services, auth: &AuthUser, q: &CallsQuery) -> Result<Calls, Error> {
    let keys = crate::keys::list(svc, &Actor::User(auth.clone()), Some(auth.id)).await?;
    let calls = shown(crate::usage::my_calls(svc, auth.id, q).await)?;
    Ok(Calls {
        users: None,
        keys,
        calls,
    })
}

/// Every user's calls (administrators).
pub async fn all_calls(svc: &Services, actor: &Actor, q: &CallsQuery) -> Result<Calls, Error> {
    let users = crate::accounts::list_users(svc, actor, 500, 0).await?;
    let keys = crate::keys::list(svc, actor, None).await?;
    let calls = shown(crate::usage::all_calls(svc, actor, q).await)?;
    Ok(Calls {
        users: Some(users),
        keys,
        calls,
    })
}

/// A read whose bad filters the page shows (a 400 is drawn as the page's error line), while
/// any other failure fails the page.
fn shown<T>(read: Result<T, Error>) -> Result<Result<T, Error>, Error> {
    match read {
        Ok(v) => Ok(Ok(v)),
        Err(e @ Error::Invalid { .. }) => Ok(Err(e)),
        Err(e) => Err(e),
    }
}
