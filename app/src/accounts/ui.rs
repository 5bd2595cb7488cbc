//! Account pages: sign up, sign in, the account page (plan, password, devices), and the
//! header's account menu.
//!
//! The sign-in, sign-up and account pages are lazy routes ([`SignInRoute`], [`SignUpRoute`],
//! [`AccountRoute`]): their code is a WASM chunk the browser fetches only on those pages. The
//! account menu and the create page's stand-in for visitors are in the main module.
//!
//! Every form is a real `<form>` posting to its server function, with or without
//! JavaScript: the server redirects back with the outcome's codes in the query string, and the
//! page shows its own sentence for each field's error beside it. Signing in, up or out
//! reloads the whole page, so everything on it is rendered for the new account.

use leptos::prelude::*;
use leptos::server_fn::ServerFn;
use leptos_meta::Title;
use leptos_router::components::A;
use leptos_router::hooks::use_query_map;
use leptos_router::{LazyRoute, lazy_route};

use super::validation::{PASSWORD_MAX_CHARS, PASSWORD_MIN_CHARS};
use super::{
    Account, ChangePassword, RevokeSession, SignIn, SignOut, SignOutEverywhere, SignUp,
    list_sessions,
};
use crate::resource::{PageResource, resource};
use shared::error::AppError;

/// The signed-in account, loaded once per page and shared through context.
#[derive(Clone, Copy)]
pub struct AccountContext(pub PageResource<Result<Option<Account>, AppError>>);

/// Shows `children` to a signed-in visitor; anyone else gets a sign-in link followed by
/// `hint` (say, `" to upload."`). Waits for the account on the server, so the page arrives
/// rendered either way.
#[component]
pub fn SignedInOnly(hint: &'static str, children: ChildrenFn) -> impl IntoView {
    let account = use_account();
    view! {
        <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
            {move || {
                let children = children.clone();
                Suspend::new(async move {
                    let signed_in = match account {
                        Some(AccountContext(r)) => r.await.ok().flatten().is_some(),
                        None => false,
                    };
                    if signed_in {
                        children().into_any()
                    } else {
                        view! {
                            <p class="signed-out-hint">
                                <A href="/signin">"Sign in"</A>
                                {hint}
                            </p>
                        }
                            .into_any()
                    }
                })
            }}
        </Suspense>
    }
}

/// The account resource the app provided.
pub fn use_account() -> Option<AccountContext> {
    use_context::<AccountContext>()
}

/// The error a plain form post to the server function at `path` came back with: the server
/// redirects to the form's page with its codes in the query string ([`crate::posted`]), and
/// this is the page's own sentence for each, never text from the address. Read the same way
/// on the server and in the browser, so hydration sees what was rendered.
pub(crate) fn posted_error(path: &'static str) -> Memo<Option<AppError>> {
    let query = use_query_map();
    Memo::new(move |_| {
        query.with(|q| {
            crate::posted::Posted::from_query(|k| q.get(k))
                .filter(|p| p.form == path)
                .map(|p| p.error())
        })
    })
}

/// The error of `action`: its own answer once it ran in the browser, else what a plain post
/// of its form came back with ([`posted_error`]).
pub(crate) fn action_error<S>(
    action: ServerAction<S>,
    path: &'static str,
) -> Signal<Option<AppError>>
where
    S: ServerFn<Error = AppError> + Clone + Send + Sync + 'static,
    S::Output: Clone + Send + Sync + 'static,
{
    let posted = posted_error(path);
    Signal::derive(move || match action.value().get() {
        Some(result) => result.err(),
        None => posted.get(),
    })
}

fn field_error(error: Memo<Option<AppError>>, field: &'static str) -> Signal<Option<String>> {
    Signal::derive(move || {
        error.with(|e| {
            e.as_ref()
                .and_then(|e| e.field_message(field).map(str::to_owned))
        })
    })
}

fn form_error(error: Memo<Option<AppError>>) -> Signal<Option<String>> {
    Signal::derive(move || {
        error.with(|e| {
            e.as_ref()
                .filter(|e| e.fields.is_empty())
                .map(|e| e.message.clone())
        })
    })
}

/// A labelled input with its error below it.
#[component]
fn Field(
    name: &'static str,
    label: &'static str,
    kind: &'static str,
    autocomplete: &'static str,
    error: Signal<Option<String>>,
    #[prop(optional)] help: Option<String>,
) -> impl IntoView {
    let error_id = format!("{name}-error");
    let help_id = format!("{name}-help");
    view! {
        <div class="field" class:invalid=move || error.get().is_some()>
            <label for=name>{label}</label>
            <input
                id=name
                name=name
                type=kind
                autocomplete=autocomplete
                required
                aria-invalid=move || error.get().is_some().to_string()
                aria-describedby=format!("{help_id} {error_id}")
            />
            {help.map(|h| view! { <p class="field-help" id=help_id.clone()>{h}</p> })}
            <p class="field-error" id=error_id role="alert">
                {move || error.get()}
            </p>
        </div>
    }
}

fn password_help() -> String {
    format!(
        "{PASSWORD_MIN_CHARS} to {PASSWORD_MAX_CHARS} characters. A few words strung together work well."
    )
}

// The account forms are plain HTML posts to their server functions, with or without
// JavaScript: the server answers with a redirect (home after signing in, up or out; back to
// the form with the error otherwise), so the whole page is rendered for the new state. Why
// not fetch: nothing on these pages benefits from staying put, and every fetch-driven form
// costs the WASM bundle its own client code (it has a size budget).

/// `/signup`, a lazy route (its code loads with the page).
pub struct SignUpRoute;

#[lazy_route]
impl LazyRoute for SignUpRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <SignUpPage /> }.into_any()
    }
}

/// `/signin`, a lazy route.
pub struct SignInRoute;

#[lazy_route]
impl LazyRoute for SignInRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        view! { <SignInPage /> }.into_any()
    }
}

/// `/account`, a lazy route. The signed-in devices load with the page: the resource is made at
/// the top of the page, outside the Suspense that shows it (see `create::ui::CreatePage`).
/// Signed out, the list answers 401 at once and nothing reads it.
pub struct AccountRoute;

#[lazy_route]
impl LazyRoute for AccountRoute {
    fn data() -> Self {
        Self
    }

    fn view(_this: Self) -> AnyView {
        let sessions = resource(|| (), |_| list_sessions());
        view! { <AccountPage sessions /> }.into_any()
    }
}

/// The sign-up page.
#[component]
fn SignUpPage() -> impl IntoView {
    let error = posted_error(SignUp::PATH);
    view! {
        <Title text="Create your account" />
        <section class="auth-page">
            <h1>"Create your account"</h1>
            <p class="lede">"Free to start: 50 generations a day."</p>
            <form method="post" action=SignUp::url() class="auth-form" novalidate>
                <Field name="email" label="Email" kind="email" autocomplete="email" error=field_error(error, "email") />
                <Field
                    name="password"
                    label="Password"
                    kind="password"
                    autocomplete="new-password"
                    error=field_error(error, "password")
                    help=password_help()
                />
                <p class="form-error" role="alert">{move || form_error(error).get()}</p>
                <button type="submit">"Create account"</button>
            </form>
            <p class="muted">"Already have an account? " <A href="/signin">"Sign in"</A></p>
        </section>
    }
}

/// The sign-in page.
#[component]
fn SignInPage() -> impl IntoView {
    let error = posted_error(SignIn::PATH);
    view! {
        <Title text="Sign in" />
        <section class="auth-page">
            <h1>"Sign in"</h1>
            <form method="post" action=SignIn::url() class="auth-form" novalidate>
                <Field name="email" label="Email" kind="email" autocomplete="username" error=field_error(error, "email") />
                <Field
                    name="password"
                    label="Password"
                    kind="password"
                    autocomplete="current-password"
                    error=field_error(error, "password")
                />
                <p class="form-error" role="alert">{move || form_error(error).get()}</p>
                <button type="submit">"Sign in"</button>
            </form>
            <p class="muted">"New here? " <A href="/signup">"Create an account"</A></p>
        </section>
    }
}

/// The header's account links: the email and a sign-out button, or sign-in and sign-up.
#[component]
pub fn AccountMenu() -> impl IntoView {
    let account = use_account();
    view! {
        <nav class="account-menu" aria-label="Account">
            <Transition fallback=|| ()>
                {move || Suspend::new(async move {
                    let signed_in = match account {
                        Some(AccountContext(r)) => r.await.ok().flatten(),
                        None => None,
                    };
                    match signed_in {
                        Some(a) => view! {
                            <A href="/account" attr:class="account-link" attr:data-testid="account-link">{a.email}</A>
                            <form method="post" action=SignOut::url() class="inline-form">
                                <button type="submit" class="link-button">"Sign out"</button>
                            </form>
                        }.into_any(),
                        None => view! {
                            <A href="/signin">"Sign in"</A>
                            <A href="/signup" attr:class="button-link">"Sign up"</A>
                        }.into_any(),
                    }
                })}
            </Transition>
        </nav>
    }
}

/// The account page: plan and usage, change password, devices.
#[component]
fn AccountPage(sessions: PageResource<Result<Vec<super::SessionView>, AppError>>) -> impl IntoView {
    let account = use_account();
    view! {
        <Title text="Your account" />
        <section class="account-page">
            <h1>"Your account"</h1>
            <Suspense fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    let signed_in = match account {
                        Some(AccountContext(r)) => r.await,
                        None => Ok(None),
                    };
                    match signed_in {
                        Ok(Some(a)) => view! { <AccountDetails account=a sessions /> }.into_any(),
                        Ok(None) => view! {
                            <p>"You are signed out. " <A href="/signin">"Sign in"</A> " to see your account."</p>
                        }.into_any(),
                        Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

fn mb(bytes: u64) -> String {
    if bytes >= 1_000_000_000 {
        format!("{:.1} GB", bytes as f64 / 1e9)
    } else {
        format!("{:.0} MB", bytes as f64 / 1e6)
    }
}

#[component]
fn AccountDetails(
    account: Account,
    sessions: PageResource<Result<Vec<super::SessionView>, AppError>>,
) -> impl IntoView {
    let error = posted_error(ChangePassword::PATH);
    let query = use_query_map();
    // Set by the server's redirect after a successful change: how many devices it ended. A
    // failed attempt after it comes back to the same address (the redirect keeps the query),
    // so an error hides the earlier success.
    let changed = move || {
        if error.with(Option::is_some) {
            return None;
        }
        query.with(|q| {
            // A count, never text: anything else from the address is not shown.
            q.get_str("password_changed")
                .and_then(|n| n.parse::<u32>().ok())
                .map(|n| match n {
                    0 => "Password changed.".to_owned(),
                    1 => "Password changed. 1 other device was signed out.".to_owned(),
                    n => format!("Password changed. {n} other devices were signed out."),
                })
        })
    };
    let revoke_error = posted_error(RevokeSession::PATH);
    view! {
        <div class="account-grid">
            <section class="panel" aria-labelledby="plan-title">
                <h2 id="plan-title">"Plan"</h2>
                <p data-testid="account-email">{account.email.clone()}</p>
                <p>
                    <span class="chip" data-testid="tier">{account.tier.label()}</span>
                </p>
                <dl class="usage">
                    <dt>"Generations in the last 24 hours"</dt>
                    <dd>{format!("{} of {}", account.generations_today, account.generations_per_day)}</dd>
                    <dt>"Upload storage"</dt>
                    <dd>{format!("{} of {}", mb(account.storage_used), mb(account.storage_bytes))}</dd>
                    <dt>"Requests per minute"</dt>
                    <dd>{account.api_per_minute}</dd>
                </dl>
            </section>
            <section class="panel" aria-labelledby="password-title">
                <h2 id="password-title">"Change password"</h2>
                <form method="post" action=ChangePassword::url() class="auth-form" novalidate>
                    <Field
                        name="current_password"
                        label="Current password"
                        kind="password"
                        autocomplete="current-password"
                        error=field_error(error, "current_password")
                    />
                    <Field
                        name="new_password"
                        label="New password"
                        kind="password"
                        autocomplete="new-password"
                        error=field_error(error, "new_password")
                        help=password_help()
                    />
                    <p class="form-error" role="alert">{move || form_error(error).get()}</p>
                    <p class="form-ok" role="status">{changed}</p>
                    <button type="submit">"Change password"</button>
                </form>
                <p class="muted">"Changing it signs out every other device."</p>
            </section>
            <Sessions sessions error=form_error(revoke_error) />
            <section class="panel">
                <h2>"Everywhere"</h2>
                <form method="post" action=SignOutEverywhere::url()>
                    <button type="submit" class="danger">"Sign out everywhere"</button>
                </form>
            </section>
        </div>
    }
}

#[component]
fn Sessions(
    sessions: PageResource<Result<Vec<super::SessionView>, AppError>>,
    error: Signal<Option<String>>,
) -> impl IntoView {
    view! {
        <section class="panel sessions" aria-labelledby="sessions-title">
            <h2 id="sessions-title">"Signed-in devices"</h2>
            <p class="form-error" role="alert">{move || error.get()}</p>
            <Transition fallback=|| view! { <p class="muted">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match sessions.await {
                        Ok(list) => view! {
                            <ul class="session-list" data-testid="sessions">
                                {list.into_iter().map(|s| {
                                    let id = s.id.to_string();
                                    view! {
                                        <li class="session">
                                            <span class="session-agent">{short_agent(&s.user_agent)}</span>
                                            <span class="muted">
                                                {format!("{} · since {}", if s.ip.is_empty() { "unknown address" } else { s.ip.as_str() }, s.since)}
                                            </span>
                                            {if s.current {
                                                view! { <span class="chip">"This device"</span> }.into_any()
                                            } else {
                                                view! {
                                                    <form method="post" action=RevokeSession::url() class="inline-form">
                                                        <input type="hidden" name="id" value=id />
                                                        <button type="submit" class="link-button">"Sign out"</button>
                                                    </form>
                                                }.into_any()
                                            }}
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any(),
                        Err(e) => view! { <p class="form-error">{e.message}</p> }.into_any(),
                    }
                })}
            </Transition>
        </section>
    }
}

/// "Firefox on Linux" rather than the whole user-agent string.
fn short_agent(ua: &str) -> String {
    let browser = ["Edg/", "Firefox/", "Chrome/", "Safari/", "curl/"]
        .iter()
        .find(|b| ua.contains(*b))
        .map(|b| match *b {
            "Edg/" => "Edge",
            "Firefox/" => "Firefox",
            "Chrome/" => "Chrome",
            "Safari/" => "Safari",
            _ => "A script",
        })
        .unwrap_or("A browser");
    let os = ["Android", "iPhone", "iPad", "Windows", "Mac OS", "Linux"]
        .iter()
        .find(|o| ua.contains(*o))
        .map(|o| if *o == "Mac OS" { "macOS" } else { o });
    match os {
        Some(os) => format!("{browser} on {os}"),
        None => browser.to_owned(),
    }
}

/// The create page's stand-in when nobody is signed in.
#[component]
pub fn SignedOutCreate() -> impl IntoView {
    view! {
        <section class="create signed-out" data-testid="signed-out">
            <h1>"Create"</h1>
            <p class="lede">"Turn a prompt into finished images for every platform."</p>
            <p>"Create a free account to start: 50 generations a day, no card needed."</p>
            <p class="cta">
                <A href="/signup" attr:class="button-link">"Sign up"</A>
                " "
                <A href="/signin">"Sign in"</A>
            </p>
        </section>
    }
}
