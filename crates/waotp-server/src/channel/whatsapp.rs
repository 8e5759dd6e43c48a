//! The WhatsApp Cloud API channel: sends an OTP as a template message through Meta, paced
//! below the sender's throughput and the pair rate, within the sender's messaging tier, and
//! says which of Meta's errors are worth a retry (the dispatcher retries).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use waotp_core::Status;
use waotp_store::WhatsAppSender;
use waotp_whatsapp::{classify, ErrorClass, GraphClient, SendFailure, TemplateMessage};

use super::{Attempt, Channel, OutboundMessage, Sender};
use crate::config::WhatsAppConfig;
use crate::sender_health::failover::unusable_by_error;
use crate::sender_health::SenderHealth;
use crate::Clock;

/// Meta's pair rate: a burst of 45 to one recipient, then one per 6 seconds.
const PAIR_BURST: f64 = 45.0;
const PAIR_INTERVAL_MS: f64 = 6000.0;
const DAY_MS: i64 = 24 * 3600 * 1000;

pub struct WhatsAppChannel {
    client: GraphClient,
    /// The configured number, for messages of apps without their own.
    sender: WhatsAppSender,
    clock: Clock,
    /// Sends of one sender in any second.
    per_second: usize,
    /// Unique recipients per moving 24 h allowed per sender, as configured (an override);
    /// `None`: Meta's, if `limit_from_meta`, else unlimited.
    messaging_limit: Option<usize>,
    limit_from_meta: bool,
    /// What Meta says of the templates and the messaging limit.
    health: Arc<SenderHealth>,
    pacing: Mutex<HashMap<String, SenderState>>,
}

#[derive(Default)]
struct SenderState {
    /// Requests under way, and when recent ones got their answer (ms). Meta counts a message
    /// when it arrives, somewhere between our start and its answer; counting requests until
    /// a second after their answer keeps any second of arrivals within the budget.
    in_flight: usize,
    answered: VecDeque<i64>,
    /// Pair-rate buckets per recipient: tokens and when they were counted.
    pairs: HashMap<String, (f64, i64)>,
    /// Last send time per recipient, for the messaging limit.
    recipients: HashMap<String, i64>,
}

impl WhatsAppChannel {
    pub fn new(config: &WhatsAppConfig, clock: Clock, health: Arc<SenderHealth>) -> reqwest::Result<Self> {
        Ok(WhatsAppChannel {
            client: GraphClient::new(&config.api_base, &config.api_version, Duration::from_secs(15))?,
            sender: WhatsAppSender {
                phone_number_id: config.phone_number_id.clone(),
                access_token: config.access_token.expose().to_owned(),
            },
            clock,
            // 10 % below the number's limit: Meta counts arrivals, which jitter.
            per_second: ((f64::from(config.messages_per_second.clamp(1, 1000)) * 0.9) as usize).max(1),
            messaging_limit: config.messaging_limit,
            limit_from_meta: config.messaging_limit_from_meta,
            health,
            pacing: Mutex::default(),
        })
    }

    /// The messaging limit in force: the configured override, else the one Meta announced
    /// (if followed) for the configured sender; `None`: unlimited. The sender's health is the
    /// configured sender's (its WABA's webhooks): an app's own sender is not held to it.
    fn limit(&self, configured: bool) -> Option<usize> {
        match self.messaging_limit {
            Some(limit) => Some(limit),
            None if self.limit_from_meta && configured => {
                self.health.learned_limit().flatten().map(|n| usize::try_from(n).unwrap_or(usize::MAX))
            }
            None => None,
        }
    }

    /// Admits a recipient under the messaging limit (unique recipients per moving 24 h).
    fn within_tier(&self, sender: &str, configured: bool, to: &str, now: i64) -> bool {
        let Some(limit) = self.limit(configured) else { return true };
        let mut pacing = self.pacing.lock().expect("pacing");
        let state = pacing.entry(sender.to_owned()).or_default();
        if state.recipients.get(to).is_some_and(|at| now - at < DAY_MS) {
            state.recipients.insert(to.to_owned(), now);
            return true;
        }
        if state.recipients.len() >= limit {
            state.recipients.retain(|_, at| now - *at < DAY_MS);
        }
        if state.recipients.len() >= limit {
            return false;
        }
        state.recipients.insert(to.to_owned(), now);
        true
    }

    /// How long this recipient must wait under the pair rate (taking a token if none).
    fn pair_wait(&self, sender: &str, to: &str, now: i64) -> Duration {
        let mut pacing = self.pacing.lock().expect("pacing");
        let state = pacing.entry(sender.to_owned()).or_default();
        if state.pairs.len() > 100_000 {
            state.pairs.retain(|_, (t, at)| *t < PAIR_BURST && now - *at < 600_000);
        }
        let (tokens, at) = state.pairs.entry(to.to_owned()).or_insert((PAIR_BURST, now));
        *tokens = (*tokens + (now - *at) as f64 / PAIR_INTERVAL_MS).min(PAIR_BURST);
        *at = now;
        let wait = if *tokens >= 1.0 { 0.0 } else { (1.0 - *tokens) * PAIR_INTERVAL_MS };
        *tokens -= 1.0;
        Duration::from_millis(wait as u64)
    }

    /// Waits for a free place in the sender's per-second budget and takes it; release it
    /// with [`Self::answered`] when the request is answered.
    async fn throughput_slot(&self, sender: &str) {
        loop {
            let wait = {
                let now = self.clock.now_ms();
                let mut pacing = self.pacing.lock().expect("pacing");
                let state = pacing.entry(sender.to_owned()).or_default();
                while state.answered.front().is_some_and(|t| now - t >= 1000) {
                    state.answered.pop_front();
                }
                if state.in_flight + state.answered.len() < self.per_second {
                    state.in_flight += 1;
                    return;
                }
                state.answered.front().map_or(5, |t| 1000 - (now - t))
            };
            tokio::time::sleep(Duration::from_millis(wait.clamp(1, 1000) as u64)).await;
        }
    }

    fn answered(&self, sender: &str) {
        let now = self.clock.now_ms();
        let mut pacing = self.pacing.lock().expect("pacing");
        let state = pacing.entry(sender.to_owned()).or_default();
        state.in_flight = state.in_flight.saturating_sub(1);
        state.answered.push_back(now);
    }

    fn failed(status: Status, error_code: Option<i64>, error_text: String) -> Attempt {
        Attempt::Failed { status, error_code, error_text }
    }
}

#[async_trait]
impl Channel for WhatsAppChannel {
    fn name(&self) -> &'static str {
        "WhatsApp Cloud API"
    }

    async fn send(&self, m: &OutboundMessage, attempt: u32) -> Attempt {
        let sender = match &m.sender {
            Sender::Configured => &self.sender,
            Sender::App(own) => own.as_ref(),
            Sender::Unusable(why) => return Self::failed(Status::RequestError, None, why.to_string()),
        };
        let configured = matches!(m.sender, Sender::Configured);
        let to = m.msisdn.as_str();
        // A recipient already counted (e.g. on an earlier try) is admitted again.
        if !self.within_tier(&sender.phone_number_id, configured, to, self.clock.now_ms()) {
            return Self::failed(
                Status::TierLimitExceeded,
                None,
                format!(
                    "the sender's messaging limit of {} unique recipients per 24 h is reached",
                    self.limit(configured).unwrap_or(0)
                ),
            );
        }
        let wait = self.pair_wait(&sender.phone_number_id, to, self.clock.now_ms());
        if self.clock.now_ms() + wait.as_millis() as i64 >= m.expires_at_ms {
            return Self::failed(Status::Rejected, None, "the pair rate would delay it past the code's expiry".into());
        }
        tokio::time::sleep(wait).await;
        // The primary, or the first usable backup; a template Meta refuses as unusable is
        // marked so and the next usable one is tried at once (the user still gets a code).
        let mut tried: Vec<&str> = Vec::new();
        loop {
            // Always a choice: the first round has the primary, a later one an untried template.
            // An app's own sender (another number, maybe another account) goes without
            // failover: the health waotp keeps is the configured sender's.
            let rendered = if configured {
                self.health.choose(&m.message, &m.backups, &tried).unwrap_or(&m.message)
            } else {
                &m.message
            };
            let sent = self.send_once(sender, to, rendered, m.expires_at_ms).await;
            let code = match &sent {
                Err(Some(SendFailure::Graph { error, .. })) => Some(error.code),
                _ => None,
            };
            if let Some(status) = code.and_then(unusable_by_error).filter(|_| configured) {
                tried.push(&rendered.template_name);
                if let Err(e) = self
                    .health
                    .record_template_status(&rendered.template_name, &rendered.language, status, "send")
                    .await
                {
                    tracing::warn!(error = %e, "cannot record a template as unusable");
                }
                let health = self.health.snapshot();
                let more = std::iter::once(&m.message).chain(&m.backups).any(|c| {
                    !tried.contains(&c.template_name.as_str()) && health.usable(&c.template_name, &c.language)
                });
                if more {
                    tracing::warn!(
                        template = %rendered.template_name,
                        language = %rendered.language,
                        code,
                        "Meta refused the template as unusable: trying a backup"
                    );
                    continue;
                }
            }
            return match sent {
                Ok(wamid) => Attempt::Sent { provider_id: wamid },
                Err(None) => Self::failed(Status::Rejected, None, "queued past the code's expiry".into()),
                Err(Some(SendFailure::Graph { error, .. })) => match classify(error.code, attempt) {
                    ErrorClass::Final(status) => Self::failed(status, Some(error.code), error.describe()),
                    ErrorClass::Retry { after, exhausted } => {
                        Attempt::Retry { after, exhausted, error_code: Some(error.code), error_text: error.describe() }
                    }
                },
                Err(Some(SendFailure::Transport(text))) => Attempt::Retry {
                    after: Duration::from_millis(500 * 2u64.pow(attempt.min(6))),
                    exhausted: Status::RequestError,
                    error_code: None,
                    error_text: text,
                },
            };
        }
    }
}

impl WhatsAppChannel {
    /// One request to Meta within the sender's throughput; `Err(None)`: not sent, the code
    /// expired while it waited.
    async fn send_once(
        &self,
        sender: &WhatsAppSender,
        to: &str,
        rendered: &waotp_core::RenderedMessage,
        expires_at_ms: i64,
    ) -> Result<String, Option<SendFailure>> {
        self.throughput_slot(&sender.phone_number_id).await;
        if self.clock.now_ms() >= expires_at_ms {
            // Give the place back: nothing was sent.
            self.answered(&sender.phone_number_id);
            return Err(None);
        }
        let message = TemplateMessage {
            to: to.to_owned(),
            template: rendered.template_name.clone(),
            language: rendered.language.clone(),
            body_parameters: rendered.body_parameters.clone(),
            button_parameter: rendered.button_parameter.clone(),
        };
        let sent = self.client.send(&sender.phone_number_id, &sender.access_token, &message).await;
        self.answered(&sender.phone_number_id);
        sent.map_err(Some)
    }
}
