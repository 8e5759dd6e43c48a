//! The store traits on [`SqliteStore`]: each method runs on a reader or as a job of the one
//! writer (grouped into a shared transaction) and calls the module of its concern.

use super::*;

#[async_trait]
impl DashboardLogins for SqliteStore {
    async fn create_login(&self, id_hash: [u8; 32], now_ms: i64, expires_at_ms: i64) -> Result<()> {
        self.write(move |c| logins::create(c, &id_hash, now_ms, expires_at_ms)).await
    }

    async fn login_is_live(&self, id_hash: [u8; 32], now_ms: i64) -> Result<bool> {
        self.read(move |c| logins::is_live(c, &id_hash, now_ms)).await
    }

    async fn end_login(&self, id_hash: [u8; 32]) -> Result<bool> {
        self.write(move |c| logins::end(c, &id_hash)).await
    }
}

#[async_trait]
impl crate::SenderHealthStore for SqliteStore {
    async fn apply_health(
        &self,
        event: Option<crate::HealthEvent>,
        facts: Vec<crate::HealthFact>,
        now_ms: i64,
    ) -> Result<crate::HealthApplied> {
        self.write(move |c| health::apply(c, event.as_ref(), &facts, now_ms)).await
    }

    async fn health_facts(&self) -> Result<Vec<crate::HealthFact>> {
        self.read(health::facts).await
    }

    async fn health_events(&self, limit: usize) -> Result<Vec<crate::HealthEvent>> {
        self.read(move |c| health::events(c, limit)).await
    }
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: AppRecord) -> Result<()> {
        self.write(move |c| apps::create(c, &app)).await
    }

    async fn get_app(&self, app_id: Uuid) -> Result<Option<AppRecord>> {
        self.read(move |c| apps::get(c, app_id)).await
    }

    async fn list_apps(&self) -> Result<Vec<AppRecord>> {
        self.read(apps::list).await
    }

    async fn update_app_settings(&self, app_id: Uuid, settings: AppSettings) -> Result<bool> {
        self.write(move |c| apps::update_settings(c, app_id, &settings)).await
    }

    async fn set_api_key_hash(&self, app_id: Uuid, hash: [u8; 32]) -> Result<bool> {
        self.write(move |c| apps::set_key_hash(c, app_id, &hash)).await
    }

    async fn set_sender(&self, app_id: Uuid, sender: Option<WhatsAppSender>) -> Result<bool> {
        self.write(move |c| apps::set_sender(c, app_id, sender.as_ref())).await
    }

    async fn set_callback_secret(&self, app_id: Uuid, secret: String) -> Result<bool> {
        self.write(move |c| apps::set_callback_secret(c, app_id, &secret)).await
    }

    async fn set_quota(&self, app_id: Uuid, quota: Option<i64>) -> Result<bool> {
        self.write(move |c| apps::set_quota(c, app_id, quota)).await
    }

    async fn add_quota(&self, app_id: Uuid, amount: i64) -> Result<Option<i64>> {
        self.write(move |c| apps::add_quota(c, app_id, amount)).await
    }

    async fn put_template(&self, app_id: Uuid, template: Template) -> Result<bool> {
        self.write(move |c| apps::put_template(c, app_id, &template)).await
    }

    async fn list_templates(&self, app_id: Uuid) -> Result<Vec<Template>> {
        self.read(move |c| apps::list_templates(c, app_id)).await
    }

    async fn delete_template(&self, app_id: Uuid, name: &str, language: &str) -> Result<bool> {
        let (name, language) = (name.to_owned(), language.to_owned());
        self.write(move |c| apps::delete_template(c, app_id, &name, &language)).await
    }

    async fn block(&self, entry: BlockEntry) -> Result<bool> {
        self.write(move |c| guards::block(c, &entry)).await
    }

    async fn unblock(&self, app_id: Option<Uuid>, entry: &str, is_prefix: bool) -> Result<bool> {
        let entry = entry.to_owned();
        self.write(move |c| guards::unblock(c, app_id, &entry, is_prefix)).await
    }

    async fn blocklist(&self) -> Result<Vec<BlockEntry>> {
        self.read(guards::list_blocked).await
    }
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, session: NewSession, guards: SendGuards) -> Result<SendOutcome> {
        self.write_counting(move |c, k| sessions::create(c, k, &session, &guards)).await
    }

    async fn verify(&self, attempt: VerifyAttempt) -> Result<VerifyOutcome> {
        self.write_counting(move |c, k| sessions::verify(c, k, &attempt)).await
    }

    async fn get_session(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<SessionRecord>> {
        self.read(move |c| session_reads::get(c, app_id, session_id)).await
    }

    async fn expire_due(&self, now_ms: i64, limit: usize) -> Result<usize> {
        self.write(move |c| sessions::expire_due(c, now_ms, limit)).await
    }

    async fn prune_guards(&self, now_ms: i64) -> Result<()> {
        self.write_counting(move |c, k| {
            k.prune(now_ms);
            if k.dropped > 0 {
                tracing::warn!(
                    uncounted = std::mem::take(&mut k.dropped),
                    kept = k.len(),
                    "rate-limit counters are at their bound: events of keys not seen before went uncounted"
                );
            }
            guards::prune(c, now_ms)?;
            logins::prune(c, now_ms)?;
            early_events::expire(c, now_ms)
        })
        .await
    }

    async fn prune_older_than(&self, before_ms: i64, limit: usize) -> Result<usize> {
        self.write(move |c| {
            Ok(sessions::prune_older_than(c, before_ms, limit)?
                + costs::prune_older_than(c, before_ms, limit)?
                + user_ids::prune(c, before_ms, limit)?)
        })
        .await
    }
}

#[async_trait]
impl DeliveryStore for SqliteStore {
    async fn undelivered(&self, after_id: i64, limit: usize) -> Result<Vec<PendingDelivery>> {
        self.read(move |c| sessions::undelivered(c, after_id, limit)).await
    }

    async fn delivery_check(
        &self,
        app_id: Uuid,
        session_id: Uuid,
        msisdn: &Msisdn,
        now_ms: i64,
    ) -> Result<DeliveryCheck> {
        let msisdn = msisdn.clone();
        self.read(move |c| session_reads::delivery_check(c, app_id, session_id, &msisdn, now_ms)).await
    }

    async fn record_delivery(&self, session_id: Uuid, outcome: DeliveryOutcome, now_ms: i64) -> Result<()> {
        self.write(move |c| sessions::record_delivery(c, session_id, &outcome, now_ms)).await
    }

    async fn deliver_to_inbox(&self, message: InboxMessage) -> Result<()> {
        self.write(move |c| sessions::deliver_to_inbox(c, &message)).await
    }

    async fn inbox(&self, app_id: Uuid, msisdn: &Msisdn, limit: usize) -> Result<Vec<InboxMessage>> {
        let msisdn = msisdn.clone();
        self.read(move |c| sessions::inbox(c, app_id, &msisdn, limit)).await
    }

    async fn mark_read(&self, app_id: Uuid, session_ids: Vec<Uuid>, now_ms: i64) -> Result<()> {
        self.write(move |c| sessions::mark_read(c, app_id, &session_ids, now_ms)).await
    }

    async fn report_provider_status(
        &self,
        provider_id: &str,
        steps: Vec<Status>,
        error: Option<(i64, String)>,
        pricing: Option<waotp_core::MessagePricing>,
        now_ms: i64,
    ) -> Result<ProviderReport> {
        let provider_id = provider_id.to_owned();
        let event = ProviderEvent::Status { steps, error, pricing };
        self.write(move |c| sessions::report(c, &provider_id, &event, now_ms)).await
    }

    async fn flag_not_requested(&self, provider_id: &str, now_ms: i64) -> Result<ProviderReport> {
        let provider_id = provider_id.to_owned();
        self.write(move |c| sessions::report(c, &provider_id, &ProviderEvent::NotRequested, now_ms)).await
    }
}

#[async_trait]
impl CallbackStore for SqliteStore {
    async fn claim_callbacks(&self, now_ms: i64, lease_until_ms: i64, limit: usize) -> Result<Vec<CallbackJob>> {
        self.write(move |c| callbacks::claim(c, now_ms, lease_until_ms, limit)).await
    }

    async fn finish_callback(
        &self,
        job: &CallbackJob,
        attempt: Option<AttemptRecord>,
        next: CallbackNext,
        now_ms: i64,
    ) -> Result<()> {
        let (id, lease) = (job.id, job.lease_until_ms);
        self.write(move |c| callbacks::finish(c, id, lease, attempt.as_ref(), &next, now_ms)).await
    }

    async fn release_callback_leases(&self) -> Result<()> {
        self.write(callbacks::release_leases).await
    }

    async fn list_callbacks(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<Vec<CallbackRecord>>> {
        self.read(move |c| callbacks::list(c, app_id, session_id)).await
    }

    async fn replay_callback(&self, app_id: Uuid, session_id: Uuid, status: Status, now_ms: i64) -> Result<bool> {
        self.write(move |c| callbacks::replay(c, app_id, session_id, status, now_ms)).await
    }

    async fn pending_callbacks(&self) -> Result<u64> {
        self.read(callbacks::pending).await
    }
}

#[async_trait]
impl DashboardStore for SqliteStore {
    async fn search_sessions(&self, query: SessionQuery) -> Result<Vec<SessionRecord>> {
        self.read(move |c| session_reads::search(c, &query)).await
    }

    async fn sessions_by_status(&self) -> Result<Vec<(Status, u64)>> {
        self.read(session_reads::by_status).await
    }

    async fn funnel(&self, since_ms: i64) -> Result<Vec<FunnelRow>> {
        self.read(move |c| session_reads::funnel(c, since_ms)).await
    }

    async fn add_refusals(&self, counts: Vec<RefusalCount>) -> Result<()> {
        if counts.is_empty() {
            return Ok(());
        }
        self.write(move |c| guards::add_refusals(c, &counts)).await
    }

    async fn refusals(&self, since_day: i64) -> Result<Vec<RefusalCount>> {
        self.read(move |c| guards::refusals(c, since_day)).await
    }

    async fn failed_callbacks(&self, limit: usize) -> Result<Vec<FailedCallback>> {
        self.read(move |c| callbacks::failed(c, limit)).await
    }

    async fn recent_inbox(&self, limit: usize) -> Result<Vec<InboxMessage>> {
        self.read(move |c| session_reads::recent_inbox(c, limit)).await
    }
}

#[async_trait]
impl crate::ReverseStore for SqliteStore {
    async fn verify_inbound(&self, attempt: crate::InboundAttempt) -> Result<crate::InboundOutcome> {
        // A message that names no session (a flood from random numbers) costs one read on a
        // reader connection and never reaches the writer.
        let key = attempt.reverse_key;
        if !self.read(move |c| reverse::key_exists(c, &key)).await? {
            return Ok(crate::InboundOutcome::NoSession);
        }
        self.write(move |c| reverse::verify_inbound(c, &attempt)).await
    }

    async fn reverse_other_senders(&self, session_id: Uuid) -> Result<Option<waotp_core::reverse::OtherSenders>> {
        self.read(move |c| reverse::other_senders(c, session_id)).await
    }

    async fn learn_user_ids(&self, facts: Vec<crate::UserIdFact>, now_ms: i64) -> Result<()> {
        if facts.is_empty() {
            return Ok(());
        }
        self.write(move |c| user_ids::learn(c, &facts, now_ms)).await
    }

    async fn user_number(&self, key: crate::UserKey) -> Result<Option<String>> {
        self.read(move |c| user_ids::number(c, &key)).await
    }

    async fn reverse_funnel(&self, since_ms: i64) -> Result<Vec<crate::ReverseFunnelRow>> {
        self.read(move |c| reverse::funnel(c, since_ms)).await
    }

    async fn reverse_link_parts(&self, app_id: Uuid, session_id: Uuid) -> Result<Option<crate::ReverseLinkParts>> {
        self.read(move |c| reverse::link_parts(c, app_id, session_id)).await
    }

    async fn record_reverse_reply(&self, session_id: Uuid, provider_id: &str, now_ms: i64) -> Result<()> {
        let provider_id = provider_id.to_owned();
        self.write(move |c| replies::record(c, session_id, &provider_id, now_ms)).await
    }
}

#[async_trait]
impl crate::CostStore for SqliteStore {
    async fn message_counts(&self, window: crate::CostWindow) -> Result<Vec<crate::MessageCount>> {
        self.read(move |c| costs::message_counts(c, &window)).await
    }

    async fn verified_by_country(&self, window: crate::CostWindow) -> Result<Vec<crate::CountryCount>> {
        self.read(move |c| costs::verified_by_country(c, &window)).await
    }

    async fn billable_in_month(&self, app_id: Uuid, month: i64) -> Result<u64> {
        self.read(move |c| costs::billable_in_month(c, app_id, month)).await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ready(&self) -> Result<()> {
        // The writer thread answers (a dead writer or failing commits fail here; after a failed
        // commit its group is a probe that must really write, see `run_batch`)…
        self.write(|c| Ok(c.query_row("SELECT 1", [], |r| r.get::<_, i64>(0))?)).await?;
        // …and the file is there with every migration.
        let path = self.readers.path.clone();
        tokio::task::spawn_blocking(move || {
            // A fresh connection that may not create the file: a deleted or unreadable
            // database fails here even while older connections still hold it open.
            let conn = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .map_err(|e| StoreError::Open(format!("{}: {e}", path.display())))?;
            let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            let expected = migrations::count() as i64;
            if version != expected {
                return Err(StoreError::Open(format!("schema version {version}, expected {expected}")));
            }
            Ok(())
        })
        .await
        .map_err(|_| StoreError::Closed)?
    }
}
