//! The conversion funnel: requested → sent → delivered → read → verified, per app and per
//! day, drawn as server-rendered SVG, and refusals by reason.

use std::collections::BTreeMap;
use std::fmt::Write;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use uuid::Uuid;
use waotp_store::{FunnelRow, DAY_MS};

use super::auth::Operator;
use super::layout::{page, OnPage, PageResult};
use super::sessions::app_select;
use super::{app_field, day, given, AppNames};
use crate::{ApiError, AppState};

const STAGES: [(&str, &str); 5] = [
    ("Requested", "#8fa3b8"),
    ("Sent", "#5b8fd6"),
    ("Delivered", "#3aa39a"),
    ("Read", "#7c6bd6"),
    ("Verified", "#1f6b4f"),
];

/// Days the page may cover.
const MAX_DAYS: i64 = 90;

#[derive(Deserialize, Default)]
pub struct FunnelQuery {
    days: Option<String>,
    app: Option<String>,
}

/// Counts of the five stages.
#[derive(Default, Clone, Copy)]
struct Stages([u64; 5]);

impl Stages {
    fn add(&mut self, r: &FunnelRow) {
        for (slot, v) in self.0.iter_mut().zip([r.requested, r.sent, r.delivered, r.read, r.verified]) {
            *slot += v;
        }
    }

    /// `part` of the requested ones, as a percentage.
    fn rate(&self, stage: usize) -> String {
        match self.0[0] {
            0 => "—".into(),
            all => format!("{:.1}%", self.0[stage] as f64 * 100.0 / all as f64),
        }
    }
}

pub async fn show(_: Operator, State(state): State<AppState>, q: super::Q<FunnelQuery>) -> PageResult {
    let Query(q) = q.unwrap_or_default();
    let days = match given(&q.days) {
        None => 14,
        Some(d) => d
            .parse::<i64>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| ApiError::validation(format!("days must be 1 to {MAX_DAYS}")))
            .on("funnel")?,
    };
    let app = app_field(&q.app).on("funnel")?;
    // This node's refusals of the last seconds first, so the page is up to date.
    state.daily_refusals.flush(state.store.as_ref()).await.on("funnel")?;
    let today = state.clock.now_ms().div_euclid(DAY_MS);
    let first = today - days + 1;
    let apps = AppNames::new(&state.store.list_apps().await.on("funnel")?);
    let rows: Vec<FunnelRow> = state
        .store
        .funnel(first * DAY_MS)
        .await
        .on("funnel")?
        .into_iter()
        .filter(|r| app.is_none_or(|a| a == r.app_id))
        .collect();
    let reverse: Vec<_> = state
        .store
        .reverse_funnel(first * DAY_MS)
        .await
        .on("funnel")?
        .into_iter()
        .filter(|r| app.is_none_or(|a| a == r.app_id))
        .collect();
    let refusals: Vec<_> = state
        .store
        .refusals(first)
        .await
        .on("funnel")?
        .into_iter()
        .filter(|r| app.is_none_or(|a| a == r.app_id))
        .collect();

    let mut total = Stages::default();
    let mut by_day: BTreeMap<i64, Stages> = (first..=today).map(|d| (d, Stages::default())).collect();
    let mut by_app: BTreeMap<Uuid, Stages> = BTreeMap::new();
    for r in &rows {
        total.add(r);
        by_day.entry(r.day).or_default().add(r);
        by_app.entry(r.app_id).or_default().add(r);
    }
    // Reverse verifications (the user sends the code: no template), requested → verified.
    let mut reverse_by_app: BTreeMap<Uuid, (u64, u64)> = BTreeMap::new();
    for r in &reverse {
        let e = reverse_by_app.entry(r.app_id).or_default();
        e.0 += r.requested;
        e.1 += r.verified;
    }
    let reverse_total = reverse_by_app.values().fold((0, 0), |t, v| (t.0 + v.0, t.1 + v.1));
    let all_sends = total.0[0] + reverse_total.0;
    let percent = |part: u64, all: u64| match all {
        0 => "—".to_owned(),
        all => format!("{:.1}%", part as f64 * 100.0 / all as f64),
    };
    let mut refusal_by_reason: BTreeMap<(&str, Uuid), u64> = BTreeMap::new();
    for r in &refusals {
        *refusal_by_reason.entry((r.reason.code(), r.app_id)).or_default() += r.count;
    }

    let body = html! {
        h1 { "Funnel" }
        form.card method="get" action="/dashboard/funnel" {
            div.fields {
                div.field { label for="days" { "Days" }
                    input #days name="days" type="number" min="1" max=(MAX_DAYS) value=(days); }
                div.field { label for="app" { "App" } (app_select("app", "app", &apps, app, Some("All apps"))) }
                div.field { button type="submit" { "Show" } }
            }
        }
        p { "Production sessions created " (day(first)) " to " (day(today)) " (UTC). Each stage counts the \
             sessions that reached it or a later one (a verified code was received and read, whatever \
             receipts came); sandbox sessions are left out." }
        div.card {
            h2 { "All days" }
            (funnel_svg(&total))
            (legend())
        }
        div.card {
            h2 { "Per day" }
            (days_svg(&by_day))
            (legend())
        }
        h2 { "Per app" }
        div.scroll { table #funnel-apps {
            thead { tr { th { "App" } @for (name, _) in STAGES { th.num { (name) } } th.num { "Verified / requested" } } }
            tbody {
                @for (app_id, s) in &by_app { tr {
                    td { (apps.name(app_id)) }
                    @for v in s.0 { td.num { (v) } }
                    td.num { (s.rate(4)) }
                } }
                tr { td { strong { "All" } } @for v in total.0 { td.num { strong { (v) } } } td.num { strong { (total.rate(4)) } } }
            }
        } }
        h2 { "Per day" }
        div.scroll { table #funnel-days {
            thead { tr { th { "Day" } @for (name, _) in STAGES { th.num { (name) } } th.num { "Verified / requested" } } }
            tbody { @for (d, s) in by_day.iter().rev() { tr {
                td { (day(*d)) } @for v in s.0 { td.num { (v) } } td.num { (s.rate(4)) }
            } } }
        } }
        h2 { "Reverse verifications" }
        p #funnel-no-template { "Sends that needed no template (the user sent the code): " strong { (reverse_total.0) }
            " of " (all_sends) " (" (percent(reverse_total.0, all_sends)) "). The stages above count template sends only." }
        div.scroll { table #funnel-reverse {
            thead { tr { th { "App" } th.num { "Requested" } th.num { "Verified" } th.num { "Verified / requested" } } }
            tbody {
                @for (app_id, (requested, verified)) in &reverse_by_app { tr {
                    td { (apps.name(app_id)) } td.num { (requested) } td.num { (verified) } td.num { (percent(*verified, *requested)) }
                } }
                tr { td { strong { "All" } } td.num { strong { (reverse_total.0) } } td.num { strong { (reverse_total.1) } }
                    td.num { strong { (percent(reverse_total.1, reverse_total.0)) } } }
            }
        } }
        h2 { "Refusals" }
        p { "Requests answered with an error by a guard (quota, blocklist, rate limits, countries, pumping rules)." }
        div.scroll { table #refusals {
            thead { tr { th { "Reason" } th { "App" } th.num { "Refused" } } }
            tbody { @for ((reason, app_id), n) in &refusal_by_reason { tr {
                td { code { (reason) } } td { (apps.name(app_id)) } td.num { (n) }
            } } }
        } }
        @if refusal_by_reason.is_empty() { p { "No refusals in these days." } }
    };
    Ok(page(StatusCode::OK, "funnel", "Funnel", None, body))
}

fn legend() -> Markup {
    // Swatches drawn as SVG (presentation attributes), not style attributes: the page's
    // Content-Security-Policy allows no inline style but the style sheet's.
    html! { div.legend aria-hidden="true" { @for (name, colour) in STAGES { span {
        svg viewBox="0 0 10 10" { rect width="10" height="10" fill=(colour) {} } (name)
    } } } }
}

/// The five stages as horizontal bars, each labelled with its count and its share of the
/// requested sessions.
fn funnel_svg(total: &Stages) -> Markup {
    // Narrow units, so the labels stay legible when a phone scales it down.
    let (w, bar_h, gap, label_w) = (480.0_f64, 30.0, 8.0, 85.0);
    let h = 5.0 * (bar_h + gap);
    let max = total.0[0].max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="funnel-chart" viewBox="0 0 {w} {h}" role="img" aria-label="Funnel: {}" xmlns="http://www.w3.org/2000/svg">"#,
        STAGES.iter().zip(total.0).map(|((n, _), v)| format!("{n} {v}")).collect::<Vec<_>>().join(", ")
    );
    for (i, ((name, colour), v)) in STAGES.iter().zip(total.0).enumerate() {
        let y = i as f64 * (bar_h + gap);
        let bw = ((w - label_w - 125.0) * v as f64 / max).max(if v > 0 { 2.0 } else { 0.0 });
        let _ = write!(
            svg,
            r##"<text x="0" y="{ty}" font-size="15" fill="#1b1f24">{name}</text><rect x="{label_w}" y="{y}" width="{bw:.1}" height="{bar_h}" rx="3" fill="{colour}"/><text x="{tx:.1}" y="{ty}" font-size="15" fill="#1b1f24">{v} · {rate}</text>"##,
            ty = y + bar_h / 2.0 + 5.0,
            tx = label_w + bw + 8.0,
            rate = total.rate(i),
        );
    }
    svg.push_str("</svg>");
    html! { (PreEscaped(svg)) }
}

/// Grouped bars: one group a day, a bar a stage, with a labelled y axis.
fn days_svg(by_day: &BTreeMap<i64, Stages>) -> Markup {
    let n = by_day.len().max(1) as f64;
    let (left, top, plot_h, bottom) = (50.0_f64, 10.0, 200.0, 40.0);
    // About 720 units wide for a week or two; wider (and scaled down) for longer spans, with
    // a date under every few groups.
    let group_w = (660.0 / n).max(40.0);
    let label_every = (n / 14.0).ceil().max(1.0) as usize;
    let w = left + n * group_w + 10.0;
    let h = top + plot_h + bottom;
    let max = by_day.values().map(|s| s.0[0]).max().unwrap_or(0).max(1);
    let scale = nice_max(max);
    let bar_w = (group_w - 12.0) / 5.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg id="days-chart" viewBox="0 0 {w} {h}" role="img" aria-label="Sessions per day by stage" xmlns="http://www.w3.org/2000/svg">"#
    );
    for tick in 0..=4 {
        let v = scale * tick / 4;
        let y = top + plot_h - plot_h * v as f64 / scale as f64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{w}" y1="{y:.1}" y2="{y:.1}" stroke="#e1e5e9"/><text x="{lx}" y="{ty:.1}" font-size="12" text-anchor="end" fill="#56606b">{v}</text>"##,
            lx = left - 6.0,
            ty = y + 4.0
        );
    }
    for (g, (d, s)) in by_day.iter().enumerate() {
        let x0 = left + g as f64 * group_w + 6.0;
        for (i, ((name, colour), v)) in STAGES.iter().zip(s.0).enumerate() {
            let bh = plot_h * v as f64 / scale as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{bar_w:.1}" height="{bh:.1}" fill="{colour}"><title>{date} {name}: {v}</title></rect>"#,
                x = x0 + i as f64 * bar_w,
                y = top + plot_h - bh,
                date = day(*d),
            );
        }
        if g % label_every != 0 {
            continue;
        }
        let label = day(*d);
        let _ = write!(
            svg,
            r##"<text x="{x:.1}" y="{y}" font-size="12" text-anchor="middle" fill="#56606b">{md}</text>"##,
            x = x0 + (group_w - 12.0) / 2.0,
            y = top + plot_h + 16.0,
            md = label.get(5..).unwrap_or(&label),
        );
    }
    svg.push_str("</svg>");
    html! { div.scroll { (PreEscaped(svg)) } }
}

/// A round axis maximum at or above `max` (1, 2 or 5 times a power of ten, times 4 ticks).
fn nice_max(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step * m * 4 >= max {
                return step * m * 4;
            }
        }
        step *= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::nice_max;

    #[test]
    fn axis_maximum_is_round_and_covers() {
        assert_eq!(nice_max(1), 4);
        assert_eq!(nice_max(5), 8);
        assert_eq!(nice_max(37), 40);
        assert_eq!(nice_max(41), 80);
        assert_eq!(nice_max(1234), 2000);
    }
}
