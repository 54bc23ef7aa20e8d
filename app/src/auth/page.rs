use super::api::{Login, Logout, Register, current_user, registration_open};
use crate::components::{Post, PostForm, after_sign_in};
use crate::i18n::error_text;
use crate::t;
use crate::wire;
use leptos::prelude::*;
use leptos_router::components::Redirect;
use leptos_router::hooks::use_query_map;
use types::UserInfo;

/// The console's view of who is signed in, shared through context.
#[derive(Clone, Copy)]
pub struct Session {
    pub user: wire::Data<Option<UserInfo>>,
    pub login: Post<Login>,
    pub logout: Post<Logout>,
    pub register: Post<Register>,
}

impl Session {
    pub fn provide() -> Session {
        let login = Post::<Login>::new();
        let logout = Post::<Logout>::new();
        let register = Post::<Register>::new();
        let user = wire::resource(
            move || {
                (
                    login.version().get(),
                    logout.version().get(),
                    register.version().get(),
                )
            },
            |_| current_user(),
        );
        let session = Session {
            user,
            login,
            logout,
            register,
        };
        provide_context(session);
        session
    }
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = expect_context::<Session>();
    // The session's posts are made before the router reads the URL: a form posted without
    // JavaScript comes back here with its error.
    session.login.recall();
    session.register.recall();
    let show_password = RwSignal::new(false);
    let registering = RwSignal::new(false);
    let open = wire::resource(|| (), |_| registration_open());
    let error = move || {
        let action = if registering.get() {
            session.register.value().get()
        } else {
            session.login.value().get()
        };
        action.and_then(Result::err).map(|e| error_text(&e))
    };
    // Back to the page that sent the visitor here, when it is one of ours.
    let query = use_query_map();
    let signed_in = move || {
        Suspend::new(async move {
            let to = after_sign_in(query.read_untracked().get("next"));
            matches!(session.user.await, Ok(Some(_))).then(|| view! { <Redirect path=to/> })
        })
    };
    let password_type = move || {
        if show_password.get() {
            "text"
        } else {
            "password"
        }
    };
    let fields = move || {
        view! {
            <label>
                {t!("auth.username")}
                <input name="username" autocomplete="username" required minlength="3" maxlength="32"/>
            </label>
            <label>
                {t!("auth.password")}
                <input name="password" type=password_type autocomplete="current-password" required/>
            </label>
            <label class="check">
                <input
                    type="checkbox"
                    data-testid="show-password"
                    on:change=move |ev| show_password.set(event_target_checked(&ev))
                />
                {t!("auth.show_password")}
            </label>
        }
    };
    view! {
        <Transition>{signed_in}</Transition>
        <section class="auth-card">
            <h1>{move || if registering.get() { t!("auth.register_title") } else { t!("auth.sign_in_title") }}</h1>
            <Show
                when=move || registering.get()
                fallback=move || {
                    view! {
                        <PostForm action=session.login>
                            {fields()}
                            <button type="submit" class="primary">{t!("auth.sign_in")}</button>
                        </PostForm>
                    }
                }
            >
                <PostForm action=session.register>
                    {fields()}
                    <button type="submit" class="primary">{t!("auth.create_account")}</button>
                </PostForm>
            </Show>
            <Show when=move || error().is_some()>
                <p class="error" role="alert">{error}</p>
            </Show>
            <Transition>
                {move || Suspend::new(async move {
                    matches!(open.await, Ok(true)).then(|| view! {
                        <button class="link" on:click=move |_| registering.update(|r| *r = !*r)>
                            {move || if registering.get() { t!("auth.have_account") } else { t!("auth.want_account") }}
                        </button>
                    })
                })}
            </Transition>
        </section>
    }
}
