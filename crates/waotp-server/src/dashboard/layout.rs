//! The page frame: navigation, the inline style sheet (no other request), flash messages,
//! and the security headers every dashboard answer carries.

use std::sync::LazyLock;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::Engine;
use maud::{html, Markup, PreEscaped, Render, DOCTYPE};
use sha2::{Digest, Sha256};

/// The whole style sheet, inline: a page is one request. Narrow screens (a 390 px phone) get
/// stacked forms, wrapped navigation and tables that scroll inside their box.
const STYLE: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1b1f24;background:#f5f6f8}
header{background:#113d2e;color:#fff;padding:.5rem 1rem;display:flex;flex-wrap:wrap;align-items:center;gap:.25rem 1rem}
header .brand{font-weight:700;margin-right:.5rem}
nav{display:flex;flex-wrap:wrap;gap:.25rem}
nav a{color:#d7efe4;text-decoration:none;padding:.3rem .55rem;border-radius:4px}
nav a.active,nav a:hover{background:#1f6b4f;color:#fff}
header form{margin-left:auto}
header button{background:transparent;border:1px solid #9cc9b5;color:#fff}
main{max-width:1200px;margin:0 auto;padding:1rem}
h1{font-size:1.35rem;margin:.25rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.card{background:#fff;border:1px solid #dde1e6;border-radius:6px;padding:1rem;margin:0 0 1rem}
.card>h2:first-child{margin-top:0}
#funnel-chart{max-width:640px}
#days-chart{min-width:560px;max-width:1000px}
pre{margin:0;white-space:pre-wrap;overflow-wrap:anywhere}
form.inline{display:inline}
.fields{display:grid;grid-template-columns:repeat(auto-fill,minmax(200px,1fr));gap:.6rem 1rem;align-items:end}
.field{display:flex;flex-direction:column;gap:.2rem;min-width:0}
label{font-weight:600;font-size:.85rem}
input,select,textarea,button{font:inherit;padding:.4rem .5rem;border:1px solid #b9c0c8;border-radius:4px;max-width:100%;min-width:0}
textarea{width:100%;min-height:4rem}
button{background:#1f6b4f;color:#fff;border-color:#1f6b4f;cursor:pointer}
button.secondary{background:#fff;color:#1f6b4f}
.check{flex-direction:row;align-items:center;gap:.4rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;width:100%;background:#fff}
th,td{text-align:left;padding:.4rem .55rem;border-bottom:1px solid #e5e8eb;vertical-align:top}
th{font-size:.8rem;text-transform:uppercase;letter-spacing:.03em;color:#56606b;white-space:nowrap}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
code,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere}
.flash{padding:.6rem .8rem;border-radius:4px;margin:0 0 1rem}
.flash.ok{background:#e3f4ea;border:1px solid #9fd3b5}
.flash.error{background:#fdeaea;border:1px solid #eeaaaa}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:999px;font-size:.8rem;background:#e8ebef;white-space:nowrap}
.badge.good{background:#d8f0e2;color:#135b37}.badge.bad{background:#fbe0e0;color:#8a1f1f}.badge.wait{background:#fff3cd;color:#6b5200}
ol.timeline{list-style:none;padding:0;margin:0}
ol.timeline li{padding:.35rem 0 .35rem 1.4rem;position:relative;border-left:2px solid #cfd6dc;margin-left:.4rem}
ol.timeline li::before{content:"";position:absolute;left:-.45rem;top:.6rem;width:.8rem;height:.8rem;border-radius:50%;background:#cfd6dc}
ol.timeline li.done::before{background:#1f6b4f}ol.timeline li.failed::before{background:#b42318}
ol.timeline li.todo{color:#7a838c}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:0}
dl.facts dt{font-weight:600;color:#56606b}dl.facts dd{margin:0;overflow-wrap:anywhere}
.secret{font-size:1.05rem;padding:.6rem;background:#fffbe6;border:1px dashed #c9a400;display:block}
svg{max-width:100%;height:auto;display:block}
.legend{display:flex;flex-wrap:wrap;gap:.3rem 1rem;font-size:.85rem;margin:.5rem 0}
.legend svg{display:inline-block;width:.8rem;height:.8rem;margin-right:.3rem;vertical-align:-.1rem}
@media (max-width:600px){main{padding:.6rem}.fields{grid-template-columns:1fr}header form{margin-left:0}}
"#;

/// The Content-Security-Policy of every dashboard answer: nothing may load or run but the
/// page's own style sheet (named by its hash), a `data:` image (the empty icon), and forms
/// posting back to us; no page may be framed (clickjacking).
pub static CONTENT_SECURITY_POLICY: LazyLock<HeaderValue> = LazyLock::new(|| {
    let style = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(STYLE.as_bytes()));
    let policy = format!(
        "default-src 'none'; style-src 'sha256-{style}'; img-src data:; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    HeaderValue::from_str(&policy).expect("a header value")
});

/// Adds the security headers to a dashboard answer (every page, redirect and error).
///
/// `Referrer-Policy: same-origin`, not `no-referrer`: under `no-referrer` a browser sends
/// `Origin: null` with a page's form posts, and those are refused as cross-site. Another site
/// still learns nothing from a link followed out of the dashboard. An answer that set its own
/// policy (the one-time login link's redirect: `no-referrer`) keeps it.
pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY.clone());
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.entry(header::REFERRER_POLICY).or_insert(HeaderValue::from_static("same-origin"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// What a page says after a change it redirected from: a fixed code in the address
/// (`?msg=template_saved`) names fixed text, so a link cannot put its own words on an
/// operator's page. An unknown code shows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    QuotaSet,
    QuotaRemoved,
    TemplateSaved,
    TemplateDeleted,
    Blocked,
    AlreadyBlocked,
    Unblocked,
    ReplayQueued,
}

impl Notice {
    const ALL: [Notice; 8] = [
        Notice::QuotaSet,
        Notice::QuotaRemoved,
        Notice::TemplateSaved,
        Notice::TemplateDeleted,
        Notice::Blocked,
        Notice::AlreadyBlocked,
        Notice::Unblocked,
        Notice::ReplayQueued,
    ];

    /// The code a redirect carries in `?msg=`.
    pub fn code(self) -> &'static str {
        match self {
            Notice::QuotaSet => "quota_set",
            Notice::QuotaRemoved => "quota_removed",
            Notice::TemplateSaved => "template_saved",
            Notice::TemplateDeleted => "template_deleted",
            Notice::Blocked => "blocked",
            Notice::AlreadyBlocked => "already_blocked",
            Notice::Unblocked => "unblocked",
            Notice::ReplayQueued => "replay_queued",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Notice::QuotaSet => "Quota set.",
            Notice::QuotaRemoved => "Quota removed: unlimited.",
            Notice::TemplateSaved => "Template saved.",
            Notice::TemplateDeleted => "Template deleted.",
            Notice::Blocked => "Blocked.",
            Notice::AlreadyBlocked => "It was already blocked.",
            Notice::Unblocked => "Unblocked.",
            Notice::ReplayQueued => "Callback replay queued: it is delivered again with its original webhook id.",
        }
    }

    /// The notice a page's `msg` names, if any.
    pub fn from_query(msg: &Option<String>) -> Option<Notice> {
        let msg = msg.as_deref()?;
        Notice::ALL.into_iter().find(|n| n.code() == msg)
    }
}

impl From<Notice> for Flash {
    fn from(n: Notice) -> Flash {
        Flash::Ok(n.text().to_owned())
    }
}

impl Render for Notice {
    fn render(&self) -> Markup {
        Flash::from(*self).render()
    }
}

/// A message at the top of a page.
pub enum Flash {
    Ok(String),
    Error(String),
}

impl Render for Flash {
    fn render(&self) -> Markup {
        match self {
            Flash::Ok(m) => html! { p.flash.ok role="status" { (m) } },
            Flash::Error(m) => html! { p.flash.error role="alert" { (m) } },
        }
    }
}

const NAV: &[(&str, &str, &str)] = &[
    ("sessions", "/dashboard/sessions", "Sessions"),
    ("funnel", "/dashboard/funnel", "Funnel"),
    ("costs", "/dashboard/costs", "Costs"),
    ("inbox", "/dashboard/inbox", "Inbox"),
    ("callbacks", "/dashboard/callbacks", "Callbacks"),
    ("manage", "/dashboard/manage", "Manage"),
    ("whatsapp", "/dashboard/whatsapp", "WhatsApp"),
    ("try", "/dashboard/try", "Try it"),
];

fn document(title: &str, refresh: Option<u32>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No icon to fetch: the page stays one request.
                link rel="icon" href="data:,";
                @if let Some(s) = refresh { meta http-equiv="refresh" content=(s); }
                title { (title) " · waotp" }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

/// A page of the logged-in dashboard. `refresh`: reload every so many seconds.
pub fn page(status: StatusCode, active: &str, title: &str, refresh: Option<u32>, body: Markup) -> Response {
    let markup = document(
        title,
        refresh,
        html! {
            header {
                span.brand { "waotp" }
                nav aria-label="Dashboard" {
                    @for (key, href, label) in NAV {
                        a href=(href) class=[(*key == active).then_some("active")]
                            aria-current=[(*key == active).then_some("page")] { (label) }
                    }
                }
                form method="post" action="/dashboard/logout" { button type="submit" { "Log out" } }
            }
            main { (body) }
        },
    );
    respond(status, markup)
}

/// A page without navigation (login, disabled).
pub fn bare_page(status: StatusCode, title: &str, body: Markup) -> Response {
    respond(status, document(title, None, html! { main { (body) } }))
}

/// Pages can show a new API key or a code: never kept in a cache.
fn respond(status: StatusCode, markup: Markup) -> Response {
    (status, [(axum::http::header::CACHE_CONTROL, "no-store")], Html(markup.into_string())).into_response()
}

/// A status as a coloured badge.
pub fn status_badge(status: waotp_core::Status) -> Markup {
    let class = match status.code() {
        4 => "badge good",
        0..=3 => "badge wait",
        _ => "badge bad",
    };
    html! { span class=(class) { (status.code()) " " (status.name()) } }
}

/// An error page inside the frame (a bad search, an unknown session).
pub fn error_page(status: StatusCode, active: &str, message: &str) -> Response {
    page(status, active, "Error", None, html! { (Flash::Error(message.to_owned())) })
}

/// A dashboard handler's error, shown as a page in the frame with the API's status code.
pub struct PageError(pub &'static str, pub crate::ApiError);

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let PageError(active, error) = self;
        let (status, message, _) = error.parts();
        let text = match &error {
            crate::ApiError::Validation(reason) => format!("{message}: {reason}"),
            crate::ApiError::Internal(cause) => {
                tracing::error!(cause = %crate::error::Causes(cause.as_ref()), "dashboard request failed");
                "Internal error: see the server's log.".to_owned()
            }
            _ => message.to_owned(),
        };
        error_page(status, active, &text)
    }
}

/// What dashboard handlers return.
pub type PageResult = Result<Response, PageError>;

/// Tags an error with the page it happened on.
pub trait OnPage<T> {
    fn on(self, active: &'static str) -> Result<T, PageError>;
}

impl<T, E: Into<crate::ApiError>> OnPage<T> for Result<T, E> {
    fn on(self, active: &'static str) -> Result<T, PageError> {
        self.map_err(|e| PageError(active, e.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_the_pages_own_style_sheet_and_nothing_else() {
        let html = document("t", None, html! { p { "x" } }).into_string();
        let (_, rest) = html.split_once("<style>").expect("a style element");
        let (style, _) = rest.split_once("</style>").expect("its end");
        let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(style.as_bytes()));
        let policy = CONTENT_SECURITY_POLICY.to_str().unwrap();
        assert!(policy.contains(&format!("style-src 'sha256-{hash}';")), "{policy}");
        assert!(policy.starts_with("default-src 'none';") && policy.contains("frame-ancestors 'none'"), "{policy}");
        assert!(!html.contains(" style=") && !html.contains("<script"), "no inline style attribute or script");
    }

    #[test]
    fn notices_are_fixed_codes() {
        for n in Notice::ALL {
            assert_eq!(Notice::from_query(&Some(n.code().to_owned())), Some(n));
        }
        assert_eq!(Notice::from_query(&Some("Your account is locked: call +1 555".into())), None);
        assert_eq!(Notice::from_query(&None), None);
    }
}
