use super::{Post, PostForm};
use crate::auth::Session;
use crate::i18n::switch::SetLanguage;
use crate::i18n::{Lang, lang};
use crate::t;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;
use types::Role;

/// The console frame: brand, navigation for the signed-in user, and sign-out.
#[component]
pub fn Layout(children: Children) -> impl IntoView {
    let session = expect_context::<Session>();
    // Once signed out, leave whatever page this was for the login page.
    let navigate = use_navigate();
    Effect::watch(
        move || session.logout.value().get(),
        move |done, _, _| {
            if matches!(done, Some(Ok(()))) {
                navigate("/login", Default::default());
            }
        },
        false,
    );
    let nav = move || {
        Suspend::new(async move {
            let Some(user) = session.user.await.ok().flatten() else {
                // Visitors: what is public.
                return view! {
                    <nav class="nav">
                        <A href="/pricing">{t!("nav.pricing")}</A>
                        <A href="/status">{t!("nav.status")}</A>
                        <A href="/docs">{t!("nav.docs")}</A>
                    </nav>
                    <div class="whoami">
                        <a href="/login" data-testid="sign-in-link">{t!("nav.sign_in")}</a>
                    </div>
                }
                .into_any();
            };
            let is_admin = user.role == Role::Admin;
            view! {
                <nav class="nav">
                    <A href="/" exact=true>{t!("nav.dashboard")}</A>
                    <A href="/keys">{t!("nav.keys")}</A>
                    <A href="/logs">{t!("nav.logs")}</A>
                    <A href="/billing">{t!("nav.billing")}</A>
                    <A href="/pricing">{t!("nav.pricing")}</A>
                    <Show when=move || is_admin>
                        <A href="/admin">{t!("admin.nav")}</A>
                    </Show>
                    <A href="/status">{t!("nav.status")}</A>
                    <A href="/docs">{t!("nav.docs")}</A>
                </nav>
                <div class="whoami">
                    <a href="/account" class="muted" data-testid="whoami" title=t!("nav.account")>{user.username.clone()}</a>
                    <PostForm action=session.logout>
                        <button type="submit" class="small" data-testid="sign-out">{t!("nav.sign_out")}</button>
                    </PostForm>
                </div>
            }
            .into_any()
        })
    };
    view! {
        <div class="shell">
            <header class="topbar">
                <a class="brand" href="/">{t!("app.name")}</a>
                <Transition>{nav}</Transition>
                <LangSwitch/>
            </header>
            <main class="content">{children()}</main>
        </div>
    }
}

/// The other language, one click away: remembered in a cookie, the page reloaded in it.
#[component]
fn LangSwitch() -> impl IntoView {
    let set = Post::<SetLanguage>::new();
    Effect::watch(
        move || set.version().get(),
        move |_, _, _| {
            if matches!(set.value().get_untracked(), Some(Ok(()))) {
                let _ = window().location().reload();
            }
        },
        false,
    );
    let other = match lang() {
        Lang::En => Lang::Zh,
        Lang::Zh => Lang::En,
    };
    view! {
        <div class="lang-switch">
            <PostForm action=set>
                <input type="hidden" name="lang" value=other.tag()/>
                <button type="submit" class="small" lang=other.tag() title=t!("nav.language")
                    aria-label=t!("nav.language_to", name = other.name()) data-testid="language">
                    {other.name()}
                </button>
            </PostForm>
        </div>
    }
}
