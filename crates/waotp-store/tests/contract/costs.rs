//! What each verification costs: a message's pricing recorded once with its session's app and
//! country (kept when it beats the send's answer), the counts a report is made of, the monthly
//! ceiling of billable messages, and retention.

use waotp_core::calendar::{days_from_civil, month_of, DAY_MS};
use waotp_core::{MessagePricing, RefusalReason};
use waotp_store::{
    BillableCeiling, CostWindow, CountryCount, MessageCount, ProviderReport, Refusal, SendGuards, SendOutcome,
    SessionQuery,
};

use super::*;

fn pricing(category: &str, pricing_type: &str) -> MessagePricing {
    MessagePricing::from_fields(None, Some(category), Some("PMP"), Some(pricing_type)).unwrap()
}

/// Reports message `wamid` delivered, with `pricing`.
async fn delivered(store: &Arc<dyn Store>, wamid: &str, pricing: MessagePricing, at: i64) -> ProviderReport {
    let steps = vec![Status::Sent, Status::Delivered];
    store.report_provider_status(wamid, steps, None, Some(pricing), at).await.unwrap()
}

/// 2025-07-10 00:00 UTC.
fn july() -> i64 {
    days_from_civil(2025, 7, 10) * DAY_MS
}

/// A session of `msisdn` created at `at` and sent as `wamid`.
async fn sent(store: &Arc<dyn Store>, app_id: Uuid, msisdn: &str, wamid: &str, at: i64) -> NewSession {
    let mut s = session(app_id, msisdn, "123456", at);
    s.challenge = wamid.into();
    s.expires_at_ms = at + DAY_MS;
    create(store, s.clone()).await;
    record_sent(store, s.session_id, wamid, at + 1).await;
    s
}

#[tokio::test]
async fn each_messages_pricing_is_recorded_once_with_its_country() {
    let (_d, store) = fresh_store().await;
    let (a, b) = (app("a"), app("b"));
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    let t = july();
    // One message of every category Meta names, and one it may name later.
    let cases = [
        ("6281234567801", "authentication", "regular", Some("ID")),
        ("6281234567802", "authentication_international", "regular", Some("ID")),
        ("447400123456", "marketing", "regular", Some("GB")),
        ("447400123457", "marketing_lite", "regular", Some("GB")),
        ("12015550123", "utility", "free_customer_service", Some("US")),
        ("12015550124", "service", "free_customer_service", Some("US")),
        ("12015550125", "referral_conversion", "free_entry_point", Some("US")),
        ("80012345678", "a_new_category", "regular", None),
    ];
    for (i, (msisdn, category, pricing_type, country)) in cases.iter().enumerate() {
        let wamid = format!("wamid.c{i}");
        let s = sent(&store, a.app_id, msisdn, &wamid, t).await;
        let outcome = delivered(&store, &wamid, pricing(category, pricing_type), t + 10).await;
        let ProviderReport::Priced(cost) = outcome else { panic!("{category}: {outcome:?}") };
        assert_eq!((cost.app_id, cost.session_id, cost.country), (a.app_id, s.session_id, *country), "{category}");
        assert_eq!(cost.pricing.billable, *pricing_type == "regular");
        // Meta repeats it (read after delivered, a webhook retried): recorded once.
        let again = delivered(&store, &wamid, pricing("marketing", "regular"), t + 20).await;
        assert_eq!(again, ProviderReport::Applied, "{category}");
    }
    // Another app's message, in the same window.
    sent(&store, b.app_id, "6281234567803", "wamid.b", t).await;
    delivered(&store, "wamid.b", pricing("authentication", "regular"), t + 10).await;

    let window = |app_id| CostWindow { app_id, from_ms: t, to_ms: t + DAY_MS };
    let mut counts = store.message_counts(window(Some(a.app_id))).await.unwrap();
    counts.sort();
    let count = |country: Option<&str>, category: &str, billable| MessageCount {
        country: country.map(str::to_owned),
        category: category.into(),
        billable,
        day: t / DAY_MS,
        messages: 1,
    };
    let mut want: Vec<_> = cases.iter().map(|(_, c, ty, country)| count(*country, c, *ty == "regular")).collect();
    want.sort();
    assert_eq!(counts, want);
    let all: u64 = store.message_counts(window(None)).await.unwrap().iter().map(|c| c.messages).sum();
    assert_eq!(all, cases.len() as u64 + 1);
    assert!(store.message_counts(CostWindow { from_ms: t + DAY_MS, ..window(None) }).await.unwrap().is_empty());
    // Billable: the five regular ones, counted in July for app a; one for app b.
    assert_eq!(store.billable_in_month(a.app_id, month_of(t)).await.unwrap(), 5);
    assert_eq!(store.billable_in_month(a.app_id, month_of(t) + 1).await.unwrap(), 0);
    assert_eq!(store.billable_in_month(b.app_id, month_of(t)).await.unwrap(), 1);
}

#[tokio::test]
async fn a_pricing_that_beats_the_sends_answer_is_recorded_with_it() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let t = july();
    let s = session(a.app_id, "447400123456", "123456", t);
    create(&store, s.clone()).await;
    let kept = delivered(&store, "wamid.early", pricing("authentication", "regular"), t + 1).await;
    assert_eq!(kept, ProviderReport::Kept { evicted: 0 });
    let window = CostWindow { app_id: None, from_ms: t, to_ms: t + DAY_MS };
    assert!(store.message_counts(window).await.unwrap().is_empty());
    record_sent(&store, s.session_id, "wamid.early", t + 5).await;
    // The kept status and its pricing, one event: both applied.
    assert_eq!(status_of(&store, a.app_id, s.session_id).await, Status::Delivered);
    let counts = store.message_counts(window).await.unwrap();
    assert_eq!(counts.len(), 1, "{counts:?}");
    assert_eq!((counts[0].country.as_deref(), counts[0].billable), (Some("GB"), true));
    assert_eq!(store.billable_in_month(a.app_id, month_of(t)).await.unwrap(), 1);
    // Taken once: a later repeat finds it recorded.
    let again = delivered(&store, "wamid.early", pricing("authentication", "regular"), t + 9).await;
    assert_eq!(again, ProviderReport::Applied);
}

/// Should two sessions have recorded the same message id (a provider that reused one), its
/// status and pricing go to the newest, on every backend.
#[tokio::test]
async fn a_message_id_recorded_twice_is_the_newest_sessions() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let t = july();
    let older = sent(&store, a.app_id, "6281234567801", "wamid.twice", t).await;
    let newer = sent(&store, a.app_id, "447400123456", "wamid.twice", t + 10).await;
    let report = delivered(&store, "wamid.twice", pricing("authentication", "regular"), t + 20).await;
    let ProviderReport::Priced(cost) = report else { panic!("{report:?}") };
    assert_eq!((cost.session_id, cost.country), (newer.session_id, Some("GB")));
    assert_eq!(status_of(&store, a.app_id, newer.session_id).await, Status::Delivered);
    assert_eq!(status_of(&store, a.app_id, older.session_id).await, Status::Sent);
}

#[tokio::test]
async fn verified_sessions_count_by_country() {
    let (_d, store) = fresh_store().await;
    let (a, b) = (app("a"), app("b"));
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    let t = july();
    let verified = |app_id, msisdn: &'static str, at: i64| {
        let store = store.clone();
        async move {
            let mut s = session(app_id, msisdn, "123456", at);
            s.expires_at_ms = at + DAY_MS;
            create(&store, s).await;
            assert_eq!(decide(&store, attempt(app_id, msisdn, "123456", at + 1)).await, VerifyDecision::Verified);
        }
    };
    verified(a.app_id, "6281234567801", t).await;
    verified(a.app_id, "6281234567801", t + 10).await;
    verified(a.app_id, "447400123456", t).await;
    verified(b.app_id, "447400123457", t).await;
    verified(a.app_id, "447400123458", t + DAY_MS).await;
    // Neither unverified nor sandbox sessions count.
    create(&store, session(a.app_id, "6281234567809", "123456", t)).await;
    let mut sandbox = session(a.app_id, "6281234567808", "123456", t);
    sandbox.sandbox = true;
    sandbox.sealed_code = None;
    create(&store, sandbox).await;
    let mut sandbox_verify = attempt(a.app_id, "6281234567808", "123456", t + 1);
    sandbox_verify.sandbox = true;
    assert_eq!(decide(&store, sandbox_verify).await, VerifyDecision::Verified);

    let window = CostWindow { app_id: Some(a.app_id), from_ms: t, to_ms: t + DAY_MS };
    let by_country = |country: &str, count| CountryCount { country: Some(country.into()), count };
    assert_eq!(store.verified_by_country(window).await.unwrap(), vec![by_country("GB", 1), by_country("ID", 2)]);
    let all = CostWindow { app_id: None, to_ms: t + 2 * DAY_MS, ..window };
    assert_eq!(store.verified_by_country(all).await.unwrap(), vec![by_country("GB", 3), by_country("ID", 2)]);
}

/// A report's verified sessions are exactly those created in its window, found within the
/// window's ids (a binary search of the ids, not a scan): sessions stored slightly out of
/// their creation order (less than `ID_ORDER_SLACK_MS`) are counted in their own window, those
/// before and after it are not, with or without an app.
#[tokio::test]
async fn a_report_counts_only_the_sessions_of_its_window() {
    const MINUTE: i64 = 60_000;
    let (_d, store) = fresh_store().await;
    let (a, b) = (app("a"), app("b"));
    store.create_app(a.clone()).await.unwrap();
    store.create_app(b.clone()).await.unwrap();
    let t = july();
    let window = |app_id, from_ms, to_ms| CostWindow { app_id, from_ms, to_ms };
    assert!(store.verified_by_country(window(None, t, t + DAY_MS)).await.unwrap().is_empty(), "no session yet");
    // 90 verified sessions, one every 10 minutes, every third stored 25 minutes late (created
    // before the one stored before it); of two apps, to numbers of two countries.
    let mut made = Vec::new();
    for i in 0..90i64 {
        let at = t + i * 10 * MINUTE - if i % 3 == 0 { 25 * MINUTE } else { 0 };
        let (owner, msisdn) = match i % 4 {
            0 => (a.app_id, format!("62812345{i:05}")),
            1 => (a.app_id, format!("447400{i:06}")),
            2 => (b.app_id, format!("62813345{i:05}")),
            _ => (b.app_id, format!("447500{i:06}")),
        };
        let mut s = session(owner, &msisdn, "123456", at);
        s.expires_at_ms = at + DAY_MS;
        create(&store, s).await;
        assert_eq!(decide(&store, attempt(owner, &msisdn, "123456", at + 1)).await, VerifyDecision::Verified);
        made.push((owner, if msisdn.starts_with("62") { "ID" } else { "GB" }, at));
    }
    let expected = |app_id: Option<Uuid>, from_ms: i64, to_ms: i64| {
        let mut counts: Vec<CountryCount> = Vec::new();
        for country in ["GB", "ID"] {
            let count = made
                .iter()
                .filter(|(owner, c, _)| *c == country && app_id.is_none_or(|id| id == *owner))
                .filter(|(_, _, at)| (from_ms..to_ms).contains(at))
                .count() as u64;
            if count > 0 {
                counts.push(CountryCount { country: Some(country.into()), count });
            }
        }
        counts
    };
    // Windows starting every 5 minutes, of 5 minutes to 5 hours (edges on sessions and between
    // them), and wide ones.
    let mut windows = vec![(t - DAY_MS, t), (t + DAY_MS, t + 2 * DAY_MS), (0, i64::MAX / 2)];
    for start in (-40..900).step_by(5) {
        for length in [5, 35, 300] {
            windows.push((t + start * MINUTE, t + (start + length) * MINUTE));
        }
    }
    for (from_ms, to_ms) in windows {
        for app_id in [None, Some(a.app_id), Some(b.app_id)] {
            let got = store.verified_by_country(window(app_id, from_ms, to_ms)).await.unwrap();
            assert_eq!(got, expected(app_id, from_ms, to_ms), "{app_id:?} {} to {}", from_ms - t, to_ms - t);
        }
    }
}

/// On PostgreSQL, with 100,000 sessions (ANALYZEd), a report's reads of `sessions` go through
/// the primary key: the ids' binary search and the window's id range, with or without an app,
/// never a sequential scan; and they count what a scan counts.
#[tokio::test]
#[ignore = "needs PostgreSQL: scripts/test runs it"]
async fn on_postgresql_a_report_reads_its_window_by_id() {
    use waotp_test_support::postgres::postgres_cost_plans;
    let url = fresh_postgres_url(&required_postgres()).await.unwrap();
    let store: Arc<dyn Store> = Arc::new(PgStore::open(PgOptions::from_url(&url).unwrap()).await.unwrap());
    let apps = [app("a"), app("b"), app("c")];
    for a in &apps {
        store.create_app(a.clone()).await.unwrap();
    }
    let ids: Vec<Uuid> = apps.iter().map(|a| a.app_id).collect();
    let client = waotp_test_support::postgres::connect(&url).await.unwrap();
    // One session a minute (ids in creation order), every other one verified.
    let t = july();
    client
        .execute(
            "INSERT INTO sessions (session_id, app_id, msisdn, challenge, sandbox, code_hash, state, status, \
               try_count, template_name, lang_code, created_at, expires_at, updated_at) \
             SELECT gen_random_uuid(), ($1::uuid[])[1 + i % 3], (6281234540000 + i % 50000)::text, 'login', \
               i % 7 = 0, '\\x00', 0, CASE WHEN i % 2 = 0 THEN 4 ELSE 1 END, 1, 't', 'en', \
               $2::bigint + i::bigint * 60000, $2::bigint + i::bigint * 60000, $2::bigint + i::bigint * 60000 \
             FROM generate_series(1, 100000) AS i",
            &[&ids, &(t - 50_000 * 60_000)],
        )
        .await
        .unwrap();
    client.batch_execute("ANALYZE sessions").await.unwrap();
    for app_id in [None, Some(ids[1])] {
        let window = CostWindow { app_id, from_ms: t, to_ms: t + DAY_MS };
        for plan in postgres_cost_plans(&url, &window).await.unwrap() {
            assert!(!plan.contains("Seq Scan on sessions"), "{app_id:?}: a scan of sessions in\n{plan}");
            assert!(plan.contains("sessions_pkey"), "{app_id:?}: not through the ids in\n{plan}");
        }
        let counted: u64 = store.verified_by_country(window).await.unwrap().iter().map(|c| c.count).sum();
        let scanned: i64 = client
            .query_one(
                "SELECT count(*) FROM sessions WHERE status = 4 AND NOT sandbox AND created_at >= $1 \
                 AND created_at < $2 AND ($3::uuid IS NULL OR app_id = $3)",
                &[&window.from_ms, &window.to_ms, &app_id],
            )
            .await
            .unwrap()
            .get(0);
        assert!(counted > 0);
        assert_eq!(counted, scanned as u64, "{app_id:?}");
    }
}

#[tokio::test]
async fn the_monthly_ceiling_refuses_a_send_before_anything_is_used() {
    let (_d, store) = fresh_store().await;
    let mut a = app("a");
    a.quota = Some(10);
    store.create_app(a.clone()).await.unwrap();
    let t = july();
    for i in 0..2 {
        let wamid = format!("wamid.m{i}");
        sent(&store, a.app_id, &format!("62812345678{i:02}"), &wamid, t).await;
        delivered(&store, &wamid, pricing("authentication", "regular"), t + 10).await;
    }
    // A free message does not count.
    sent(&store, a.app_id, "6281234567850", "wamid.free", t).await;
    delivered(&store, "wamid.free", pricing("utility", "free_customer_service"), t + 10).await;
    let guards = |limit| SendGuards {
        use_quota: true,
        billable_ceiling: Some(BillableCeiling { limit, month: month_of(t) }),
        ..SendGuards::default()
    };
    let stored = || async {
        let query = SessionQuery { app_id: Some(a.app_id), limit: 100, ..SessionQuery::default() };
        store.search_sessions(query).await.unwrap().len()
    };
    let before = stored().await;
    let outcome = store.create_session(session(a.app_id, "6281234567860", "123456", t + 20), guards(2)).await.unwrap();
    assert_eq!(outcome, SendOutcome::Refused(Refusal::new(RefusalReason::BillableCeilingReached)));
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().quota, Some(10), "no quota used");
    assert_eq!(stored().await, before, "nothing stored");
    // Under the ceiling, and in the next month, a send goes through (and uses its quota).
    let next = session(a.app_id, "6281234567861", "123456", t + 21);
    assert!(matches!(store.create_session(next, guards(3)).await.unwrap(), SendOutcome::Created { .. }));
    let mut august = guards(2);
    august.billable_ceiling = Some(BillableCeiling { limit: 2, month: month_of(t) + 1 });
    let later = session(a.app_id, "6281234567862", "123456", t + 22);
    assert!(matches!(store.create_session(later, august).await.unwrap(), SendOutcome::Created { .. }));
    assert_eq!(store.get_app(a.app_id).await.unwrap().unwrap().quota, Some(8));
}

/// The ceiling is checked in the same place on every backend: after the idempotency key
/// (a repeat still gets its first answer), before the blocklist, the limits and the quota (a
/// blocked number past the ceiling is refused for the ceiling, and nothing is counted).
#[tokio::test]
async fn the_ceiling_is_checked_after_the_idempotency_key_and_before_everything_else() {
    use waotp_store::{BlockEntry, IdempotencyKey, Limit};
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let t = july();
    sent(&store, a.app_id, "6281234567801", "wamid.o1", t).await;
    delivered(&store, "wamid.o1", pricing("authentication", "regular"), t + 10).await;
    let blocked = "6281234567802";
    store.block(BlockEntry { app_id: None, entry: blocked.into(), is_prefix: false, created_at_ms: 0 }).await.unwrap();
    let limit = Limit { key: "per-app".into(), limit: 1, window_ms: DAY_MS, reason: RefusalReason::RateLimitedApp };
    let key = IdempotencyKey { key: "k1".into(), body_hash: [1; 32] };
    let guards = |limit_of_ceiling: u64, idempotency: Option<IdempotencyKey>| SendGuards {
        idempotency,
        check_blocklist: true,
        limits: vec![limit.clone()],
        use_quota: true,
        billable_ceiling: Some(BillableCeiling { limit: limit_of_ceiling, month: month_of(t) }),
        ..SendGuards::default()
    };
    // Under the ceiling: stored under an idempotency key.
    let first = session(a.app_id, "6281234567803", "123456", t + 20);
    let no_limit = |ceiling, key| SendGuards { limits: Vec::new(), ..guards(ceiling, key) };
    let created = store.create_session(first.clone(), no_limit(2, Some(key.clone()))).await.unwrap();
    assert!(matches!(created, SendOutcome::Created { .. }), "{created:?}");
    // At the ceiling: the repeat of that send gets its first answer; a blocked number, and
    // others (the limit would let one through), are refused for the ceiling.
    let again =
        store.create_session(session(a.app_id, "6281234567803", "123456", t + 21), no_limit(1, Some(key))).await;
    assert!(matches!(again, Ok(SendOutcome::Replayed(ref r)) if r.session_id == first.session_id), "{again:?}");
    let ceiling = SendOutcome::Refused(Refusal::new(RefusalReason::BillableCeilingReached));
    for msisdn in [blocked, "6281234567804", "6281234567805"] {
        let outcome = store.create_session(session(a.app_id, msisdn, "123456", t + 22), guards(1, None)).await.unwrap();
        assert_eq!(outcome, ceiling, "{msisdn}");
    }
    // Nothing was counted past the ceiling: raised, one send fits the limit, then the limit
    // refuses; the blocklist refuses the blocked number.
    let fits = store.create_session(session(a.app_id, "6281234567806", "123456", t + 23), guards(5, None)).await;
    assert!(matches!(fits, Ok(SendOutcome::Created { .. })), "{fits:?}");
    let over = store.create_session(session(a.app_id, "6281234567807", "123456", t + 24), guards(5, None)).await;
    assert!(matches!(over, Ok(SendOutcome::Refused(ref r)) if r.reason == RefusalReason::RateLimitedApp), "{over:?}");
    let refused = store.create_session(session(a.app_id, blocked, "123456", t + 25), no_limit(5, None)).await;
    let number = RefusalReason::Blocked(waotp_core::Blocklisted::Number);
    assert!(matches!(refused, Ok(SendOutcome::Refused(ref r)) if r.reason == number), "{refused:?}");
}

#[tokio::test]
async fn costs_go_with_the_retention() {
    let (_d, store) = fresh_store().await;
    let a = app("a");
    store.create_app(a.clone()).await.unwrap();
    let (june, t) = (july() - 30 * DAY_MS, july());
    for (wamid, at, msisdn) in [("wamid.old", june, "6281234567801"), ("wamid.new", t, "6281234567802")] {
        sent(&store, a.app_id, msisdn, wamid, at).await;
        delivered(&store, wamid, pricing("authentication", "regular"), at + 10).await;
    }
    let everything = CostWindow { app_id: None, from_ms: 0, to_ms: i64::MAX };
    assert_eq!(store.message_counts(everything).await.unwrap().len(), 2);
    // Cut in July: June's session, cost and month go; July's stay (the month is not over).
    while store.prune_older_than(t - DAY_MS, 1).await.unwrap() > 0 {}
    let left = store.message_counts(everything).await.unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].day, t / DAY_MS);
    assert_eq!(store.billable_in_month(a.app_id, month_of(june)).await.unwrap(), 0);
    assert_eq!(store.billable_in_month(a.app_id, month_of(t)).await.unwrap(), 1);
}
