//! The store traits on [`PgStore`]: each method takes a connection (or runs a transaction,
//! retried on a conflict) and calls the module of its concern.

use super::*;

#[async_trait]
impl DashboardLogins for PgStore {
    async fn create_login(&self, id_hash: [u8; 32], now_ms: i64, expires_at_ms: i64) -> Result<()> {
        logins::create(&self.conn().await?, &id_hash, now_ms, expires_at_ms).await
    }

    async fn login_is_live(&self, id_hash: [u8; 32], now_ms: i64) -> Result<bool> {
        logins::is_live(&self.conn().await?, &id_hash, now_ms).await
    }

    async fn end_login(&self, id_hash: [u8; 32]) -> Result<bool> {
        logins::end(&self.conn().await?, &id_hash).await
    }
}

#[async_trait]
impl crate::SenderHealthStore for PgStore {
    async fn apply_health(
        &self,
        event: Option<crate::HealthEvent>,
        facts: Vec<crate::HealthFact>,
        now_ms: i64,
    ) -> Result<crate::HealthApplied> {
        transaction!(self, |t| health::apply(&t, event.as_ref(), &facts, now_ms).await)
    }

    async fn health_facts(&self) -> Result<Vec<crate::HealthFact>> {
        health::facts(&self.conn().await?).await
    }

    async fn health_events(&self, limit: usize) -> Result<Vec<crate::HealthEvent>> {
        health::events(&self.conn().await?, limit).await
    }
}

#[async_trait]
impl AppStore for PgStore {
    async fn create_app(&self, app: AppRecord) -> Result<()> {
        let conn = self.conn().await?;
        apps::create(&conn, &app).await
    }

    async fn get_app(&self, app_id: Uuid) -> Result<Option<AppRecord>> {
        let conn = self.conn().await?;
        apps::get(&conn, app_id).await
    }

    async fn list_apps(&self) -> Result<Vec<AppRecord>> {
        let conn = self.conn().await?;
        apps::list(&conn).await
    }

    async fn update_app_settings(&self, app_id: Uuid, settings: AppSettings) -> Result<bool> {
        let conn = self.conn().await?;
        apps::update_settings(&conn, app_id, &settings).await
    }

    async fn set_api_key_hash(&self, app_id: Uuid, hash: [u8; 32]) -> Result<bool> {
        let conn = self.conn().await?;
        apps::set_key_hash(&conn, app_id, &hash).await
    }

    async fn set_sender(&self, app_id: Uuid, sender: Option<WhatsAppSender>) -> Result<bool> {
        let conn = self.conn().await?;
        apps::set_sender(&conn, app_id, sender.as_ref()).await
    }

    async fn set_callback_secret(&self, app_id: Uuid, secret: String) -> Result<bool> {
        let conn = self.conn().await?;
        apps::set_callback_secret(&conn, app_id, &secret).await
    }

    async fn set_quota(&self, app_id: Uuid, quota: Option<i64>) -> Result<bool> {
        let conn = self.conn().await?;
        apps::set_quota(&conn, app_id, quota).await
    }

    async fn add_quota(&self, app_id: Uuid, amount: i64) -> Result<Option<i64>> {
        let conn = self.conn().await?;
        apps::add_quota(&conn, app_id, amount).await
    }

    async fn put_template(&self, app_id: Uuid, template: Template) -> Result<bool> {
        let conn = self.conn().await?;
        apps::put_template(&conn, app_id, &template).await
    }

    async fn list_templates(&self, app_id: Uuid) -> Result<Vec<Template>> {
        let conn = self.conn().await?;
        apps::list_templates(&conn, app_id).await
    }

    async fn delete_template(&self, app_id: Uuid, name: &str, language: &str) -> Result<bool> {
        let conn = self.conn().await?;
        apps::delete_template(&conn, app_id, name, language).await
    }

    async fn block(&self, entry: BlockEntry) -> Result<bool> {
        let conn = self.conn().await?;
        guards::block(&conn, &entry).await
    }

    async fn unblock(&self, app_id: Option<Uuid>, entry: &str, is_prefix: bool) -> Result<bool> {
        let conn = self.conn().await?;
        guards::unblock(&conn, app_id, entry, is_prefix).await
    }

    async fn blocklist(&self) -> Result<Vec<BlockEntry>> {
        let conn = self.conn().await?;
        guards::list_blocked(&conn).await
    }
}

#[async_trait]
impl SessionStore for PgStore {
    async fn create_session(&self, session: NewSession, guards: SendGuards) -> Result<SendOutcome> {
        let now = session.created_at_ms;
        // 1. A known idempotency key answers without counting anything.
        if let Some(k) = &guards.idempotency {
            match guards::idempotent(&self.conn().await?, session.app_id, k, now).await? {
                guards::Idempotent::Replay(replay) => return Ok(SendOutcome::Replayed(replay)),
                guards::Idempotent::Mismatch => {
                    return Ok(SendOutcome::Refused(Refusal::new(waotp_core::RefusalReason::IdempotencyMismatch)))
                }
                guards::Idempotent::New => {}
            }
        }
        // 2. The app's monthly ceiling of billable messages, the blocklist and the counts
        //    (limits and signals, atomically per key), in that order: one statement, committed
        //    at once.
        let counters = get(&self.counters, self.wait).await?;
        let counted = retry(|| guards::count_send(&counters, &guards, session.app_id, &session.msisdn, now)).await?;
        let (counted, fired) = match counted {
            guards::Counted::Refused(refusal) => {
                // A concurrent request with the same idempotency key may have been stored
                // meanwhile (and counted): this one is its retry, not a new send.
                if let Some(k) = &guards.idempotency {
                    if let guards::Idempotent::Replay(replay) =
                        guards::idempotent(&self.conn().await?, session.app_id, k, now).await?
                    {
                        return Ok(SendOutcome::Replayed(replay));
                    }
                }
                return Ok(SendOutcome::Refused(refusal));
            }
            guards::Counted::Passed { keys, fired } => (keys, fired),
        };
        // 3. The session, durably (with its inbox message, if any): one statement and its
        //    commit, or a transaction when an idempotency key comes along.
        let node = self.node_id;
        let stored = if guards.idempotency.is_none() && session.reverse_key.is_none() {
            retry(|| async {
                let conn = self.conn().await?;
                Ok(match sessions::store(&conn, &session, guards.use_quota, node).await? {
                    Some(try_count) => SendOutcome::Created { try_count, signals: Vec::new() },
                    None => SendOutcome::Refused(Refusal::new(waotp_core::RefusalReason::QuotaExhausted)),
                })
            })
            .await
        } else {
            transaction!(self, |t| sessions::create(&t, &session, &guards, node).await, |out| matches!(
                out,
                SendOutcome::Created { .. }
            ))
        };
        match stored {
            Ok(SendOutcome::Created { try_count, .. }) => Ok(SendOutcome::Created { try_count, signals: fired }),
            other => {
                if let Err(e) = guards::give_back(&counters, &counted).await {
                    if e.is_unavailable() {
                        // The database went away between the count and the session: the
                        // counts go back once it answers again (the send was refused).
                        give_back_later(self.counters.clone(), self.wait, counted);
                    } else {
                        tracing::warn!(error = %e, "could not give back an unstored send's counts");
                    }
                }
                other
            }
        }
    }

    async fn verify(&self, attempt: VerifyAttempt) -> Result<VerifyOutcome> {
        let outcome = {
            let counters = get(&self.counters, self.wait).await?;
            sessions::verify(&counters, &self.conn().await?, &attempt).await?
        };
        if outcome == VerifyOutcome::Decided(waotp_core::VerifyDecision::Verified) && !attempt.on_verified.is_empty() {
            // Conversion tracking: approximate by nature, counted after the commit, in the
            // msisdn's shard of the range's counter (see `guards::count_send`).
            let counters = get(&self.counters, self.wait).await?;
            for (counter, window_ms) in &attempt.on_verified {
                let key = guards::shard_key(counter, guards::shard_of(&attempt.msisdn));
                if let Err(e) = guards::bump(&counters, &key, *window_ms, attempt.now_ms).await {
                    tracing::warn!(error = %e, "could not count a verified code for conversion tracking");
                }
            }
        }
        Ok(outcome)
    }

    async fn get_session(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<SessionRecord>> {
        let conn = self.conn().await?;
        session_reads::get(&conn, app_id, session_id).await
    }

    async fn expire_due(&self, now_ms: i64, limit: usize) -> Result<usize> {
        transaction!(self, |t| sessions::expire_due(&t, now_ms, limit).await)
    }

    async fn prune_guards(&self, now_ms: i64) -> Result<()> {
        let conn = self.conn().await?;
        guards::prune(&conn, now_ms).await?;
        logins::prune(&conn, now_ms).await?;
        early_events::expire(&conn, now_ms).await
    }

    async fn prune_older_than(&self, before_ms: i64, limit: usize) -> Result<usize> {
        transaction!(self, |t| Ok(sessions::prune_older_than(&t, before_ms, limit).await?
            + costs::prune_older_than(&t, before_ms, limit).await?
            + user_ids::prune(&t, before_ms, limit).await?))
    }
}

#[async_trait]
impl DeliveryStore for PgStore {
    async fn undelivered(&self, after_id: i64, limit: usize) -> Result<Vec<PendingDelivery>> {
        let (node, ttl) = (self.node_id, self.node_ttl_ms);
        transaction!(self, |t| sessions::undelivered(&t, after_id, limit, node, ttl).await)
    }

    async fn delivery_check(
        &self,
        app_id: Uuid,
        session_id: Uuid,
        msisdn: &Msisdn,
        now_ms: i64,
    ) -> Result<DeliveryCheck> {
        let conn = self.conn().await?;
        session_reads::delivery_check(&conn, app_id, session_id, msisdn, now_ms).await
    }

    async fn record_delivery(&self, session_id: Uuid, outcome: DeliveryOutcome, now_ms: i64) -> Result<()> {
        transaction!(self, |t| sessions::record_delivery(&t, session_id, &outcome, now_ms).await)
    }

    async fn deliver_to_inbox(&self, message: InboxMessage) -> Result<()> {
        transaction!(self, |t| inbox::deliver_to_inbox(&t, &message).await)
    }

    async fn inbox(&self, app_id: Uuid, msisdn: &Msisdn, limit: usize) -> Result<Vec<InboxMessage>> {
        let conn = self.conn().await?;
        inbox::inbox(&conn, app_id, msisdn, limit).await
    }

    async fn mark_read(&self, app_id: Uuid, session_ids: Vec<Uuid>, now_ms: i64) -> Result<()> {
        transaction!(self, |t| inbox::mark_read(&t, app_id, &session_ids, now_ms).await)
    }

    async fn report_provider_status(
        &self,
        provider_id: &str,
        steps: Vec<Status>,
        error: Option<(i64, String)>,
        pricing: Option<waotp_core::MessagePricing>,
        now_ms: i64,
    ) -> Result<ProviderReport> {
        let event = ProviderEvent::Status { steps, error, pricing };
        transaction!(self, |t| sessions::report(&t, provider_id, &event, now_ms).await)
    }

    async fn flag_not_requested(&self, provider_id: &str, now_ms: i64) -> Result<ProviderReport> {
        transaction!(self, |t| sessions::report(&t, provider_id, &ProviderEvent::NotRequested, now_ms).await)
    }
}

#[async_trait]
impl CallbackStore for PgStore {
    async fn claim_callbacks(&self, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<CallbackJob>> {
        let conn = self.conn().await?;
        callbacks::claim(&conn, now_ms, lease_until_ms, limit, self.node_id, self.node_ttl_ms).await
    }

    async fn finish_callback(
        &self,
        job: &CallbackJob,
        attempt: Option<AttemptRecord>,
        next: CallbackNext,
        now_ms: i64,
    ) -> Result<()> {
        let node = self.node_id;
        transaction!(self, |t| callbacks::finish(&t, job, attempt.as_ref(), &next, now_ms, node).await)
    }

    async fn release_callback_leases(&self) -> Result<()> {
        let conn = self.conn().await?;
        callbacks::release_dead_leases(&conn, self.node_ttl_ms).await
    }

    async fn list_callbacks(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<Vec<CallbackRecord>>> {
        let conn = self.conn().await?;
        callbacks::list(&conn, app_id, session_id).await
    }

    async fn replay_callback(&self, app_id: Uuid, session_id: Uuid, status: Status, now_ms: i64) -> Result<bool> {
        transaction!(self, |t| callbacks::replay(&t, app_id, session_id, status, now_ms).await)
    }

    async fn pending_callbacks(&self) -> Result<u64> {
        let conn = self.conn().await?;
        callbacks::pending(&conn).await
    }
}

#[async_trait]
impl DashboardStore for PgStore {
    async fn search_sessions(&self, query: SessionQuery) -> Result<Vec<SessionRecord>> {
        let conn = self.conn().await?;
        session_reads::search(&conn, &query).await
    }

    async fn sessions_by_status(&self) -> Result<Vec<(Status, u64)>> {
        let conn = self.conn().await?;
        session_reads::by_status(&conn).await
    }

    async fn funnel(&self, since_ms: i64) -> Result<Vec<FunnelRow>> {
        let conn = self.conn().await?;
        session_reads::funnel(&conn, since_ms).await
    }

    async fn add_refusals(&self, counts: Vec<RefusalCount>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        retry(|| async { guards::add_refusals(&self.conn().await?, &counts).await }).await
    }

    async fn refusals(&self, since_day: i64) -> Result<Vec<RefusalCount>> {
        let conn = self.conn().await?;
        guards::refusals(&conn, since_day).await
    }

    async fn failed_callbacks(&self, limit: usize) -> Result<Vec<FailedCallback>> {
        let conn = self.conn().await?;
        callbacks::failed(&conn, limit).await
    }

    async fn recent_inbox(&self, limit: usize) -> Result<Vec<InboxMessage>> {
        let conn = self.conn().await?;
        session_reads::recent_inbox(&conn, limit).await
    }
}

#[async_trait]
impl crate::ReverseStore for PgStore {
    async fn verify_inbound(&self, attempt: crate::InboundAttempt) -> Result<crate::InboundOutcome> {
        // A message that names no session (a flood from random numbers) costs one read.
        if !reverse::key_exists(&self.conn().await?, &attempt.reverse_key).await? {
            return Ok(crate::InboundOutcome::NoSession);
        }
        transaction!(self, |t| reverse::verify_inbound(&t, &attempt).await)
    }

    async fn reverse_other_senders(&self, session_id: Uuid) -> Result<Option<waotp_core::reverse::OtherSenders>> {
        reverse::other_senders(&self.conn().await?, session_id).await
    }

    async fn learn_user_ids(&self, facts: Vec<crate::UserIdFact>, now_ms: i64) -> Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        transaction!(self, |t| user_ids::learn(&t, &facts, now_ms).await)
    }

    async fn user_number(&self, key: crate::UserKey) -> Result<Option<String>> {
        user_ids::number(&self.conn().await?, &key).await
    }

    async fn reverse_funnel(&self, since_ms: i64) -> Result<Vec<crate::ReverseFunnelRow>> {
        reverse::funnel(&self.conn().await?, since_ms).await
    }

    async fn reverse_link_parts(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<crate::ReverseLinkParts>> {
        reverse::link_parts(&self.conn().await?, app_id, session_id).await
    }

    async fn record_reverse_reply(&self, session_id: Uuid, provider_id: &str, now_ms: i64) -> Result<()> {
        transaction!(self, |t| replies::record(&t, session_id, provider_id, now_ms).await)
    }
}

#[async_trait]
impl crate::CostStore for PgStore {
    async fn message_counts(&self, window: crate::CostWindow) -> Result<Vec<crate::MessageCount>> {
        costs::message_counts(&self.conn().await?, &window).await
    }

    async fn verified_by_country(&self, window: crate::CostWindow) -> Result<Vec<crate::CountryCount>> {
        costs::verified_by_country(&self.conn().await?, &window).await
    }

    async fn billable_in_month(&self, app_id: Uuid, month: i64) -> Result<u64> {
        costs::billable_in_month(&self.conn().await?, app_id, month).await
    }
}

#[async_trait]
impl Store for PgStore {
    async fn ready(&self) -> Result<()> {
        let conn = self.conn().await?;
        let version: i64 = query_one(&conn, "SELECT version FROM waotp_schema", &[]).await?.get(0);
        let expected = migrations::count() as i64;
        if version != expected {
            return Err(StoreError::Open(format!("schema version {version}, expected {expected}")));
        }
        Ok(())
    }

    fn multi_node(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::{PgOptions, Roots, SslMode, KEEPALIVE_IDLE, KEEPALIVE_INTERVAL};

    #[test]
    fn tls_parameters_are_waotps_and_the_driver_is_told_whether_to_encrypt() {
        let options = PgOptions::from_url(
            "postgres://u:p@db.example/db?sslmode=verify-ca&application_name=w&sslrootcert=/etc/ca.pem&pool_size=8",
        )
        .unwrap();
        assert_eq!(options.url, "postgres://u:p@db.example/db?application_name=w");
        assert_eq!((options.tls.mode, &options.tls.roots), (SslMode::VerifyCa, &Roots::File("/etc/ca.pem".into())));
        assert_eq!(options.pool_size, 8);
        let driver = |url: &str| PgOptions::from_url(url).unwrap().driver_config().unwrap().get_ssl_mode();
        use tokio_postgres::config::SslMode as Driver;
        assert_eq!(driver("postgres://u@h/db"), Driver::Prefer);
        assert_eq!(driver("postgres://u@h/db?sslmode=disable"), Driver::Disable);
        for mode in ["require", "verify-ca", "verify-full"] {
            assert_eq!(driver(&format!("postgres://u@h/db?sslmode={mode}")), Driver::Require, "{mode}");
        }
        let e = PgOptions::from_url("postgres://u:secret@h/db?sslmode=verify").unwrap_err().to_string();
        assert!(e.contains("sslmode must be") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn connections_give_up_on_a_silent_server_unless_the_url_says_otherwise() {
        let defaults = PgOptions::from_url("postgres://u@127.0.0.1/db").unwrap().driver_config().unwrap();
        assert!(defaults.get_keepalives());
        assert_eq!(defaults.get_keepalives_idle(), KEEPALIVE_IDLE);
        assert_eq!(defaults.get_keepalives_interval(), Some(KEEPALIVE_INTERVAL));
        assert_eq!(defaults.get_keepalives_retries(), Some(3));
        assert_eq!(defaults.get_connect_timeout(), Some(&crate::DEFAULT_DATABASE_WAIT));
        assert!(defaults.get_tcp_user_timeout().is_some());
        let own = PgOptions::from_url(
            "postgres://u@127.0.0.1/db?keepalives_idle=60&keepalives_interval=9&keepalives_retries=7&connect_timeout=4",
        )
        .unwrap()
        .driver_config()
        .unwrap();
        assert_eq!(own.get_keepalives_idle(), Duration::from_secs(60));
        assert_eq!(own.get_keepalives_interval(), Some(Duration::from_secs(9)));
        assert_eq!(own.get_keepalives_retries(), Some(7));
        assert_eq!(own.get_connect_timeout(), Some(&Duration::from_secs(4)));
    }
}
