//! Whose health waotp follows: the configured sender's WhatsApp Business Account
//! (`whatsapp_waba_id`) and, if set, its number (`whatsapp_display_number`). A management
//! webhook names its account in its entry's id; one of any other account (another business
//! subscribed to the same Meta app, a per-app sender's) is not the sender's news: counted and
//! ignored. Without the WABA id waotp knows no account, and follows none.

use waotp_store::{HealthFact, HealthKind};

/// The account (and number) whose news are the sender's health.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Followed {
    /// `whatsapp_waba_id`.
    pub account: Option<String>,
    /// `whatsapp_display_number` (digits): the only number whose own messaging limit
    /// (`current_limit`) is the sender's; unset, any number of the account's.
    pub number: Option<String>,
}

/// Whose a management event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Whose {
    /// The followed account's: applied.
    Ours,
    /// Another account's: counted (`other_account`) and ignored.
    OtherAccount,
    /// No account is followed (`whatsapp_waba_id` unset): counted (`unknown_account`) and
    /// ignored.
    NoAccountKnown,
}

impl Followed {
    /// Whose an event is, by the id its entry names (every management field's envelope names
    /// the WABA it is about).
    pub fn whose(&self, entry_id: &str) -> Whose {
        match &self.account {
            None => Whose::NoAccountKnown,
            Some(account) if account == entry_id => Whose::Ours,
            Some(_) => Whose::OtherAccount,
        }
    }

    /// Whether a stored fact is shown as the sender's (dashboard): an account's fact must name
    /// the followed account (an older waotp stored other accounts' too). An `account_alerts`
    /// fact names the entity it is about (the business, a number) and is kept: only the
    /// account's own alerts were ever stored once the account was checked.
    pub fn owns(&self, f: &HealthFact) -> bool {
        f.kind != HealthKind::Account
            || f.aspect.starts_with("alert ")
            || self.account.as_deref() == Some(f.subject.as_str())
    }

    /// Whether a stored messaging limit is the sender's: the followed account's (its
    /// portfolio's), or a number's own — with `whatsapp_display_number` set, only that
    /// number's. None while no account is followed.
    pub fn limits(&self, f: &HealthFact) -> bool {
        let Some(account) = &self.account else { return false };
        f.aspect == "messaging_limit"
            && match f.kind {
                HealthKind::Account => f.subject == *account,
                HealthKind::Number => self.number.as_deref().is_none_or(|n| n == f.subject),
                HealthKind::Template => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Snapshot;
    use super::*;

    fn fact(kind: HealthKind, subject: &str, aspect: &str, value: &str, at_ms: i64) -> HealthFact {
        HealthFact {
            kind,
            subject: subject.into(),
            aspect: aspect.into(),
            value: value.into(),
            reason: None,
            at_ms,
            source: "webhook".into(),
        }
    }

    const OURS: &str = "102290129340398";
    const THEIRS: &str = "999000111222333";

    #[test]
    fn the_limit_is_only_the_followed_accounts_or_its_numbers() {
        let followed = Followed { account: Some(OURS.into()), number: None };
        // An older waotp stored another account's limit, newer than ours: not taken.
        let facts = vec![
            fact(HealthKind::Account, OURS, "messaging_limit", "2000", 1),
            fact(HealthKind::Account, THEIRS, "messaging_limit", "250", 2),
            fact(HealthKind::Account, THEIRS, "violation", "ADULT", 2),
            fact(HealthKind::Account, "506914307656634", "alert X", "ACTIVE", 2),
        ];
        let s = Snapshot::of(facts.clone(), &followed);
        assert_eq!(s.limit, Some(Some(2000)));
        assert_eq!(s.facts.len(), 2, "another account's facts are not shown: {:?}", s.facts);
        assert!(!s.facts.iter().any(|f| f.subject == THEIRS));
        // Without a WABA id no account is followed: no limit, no account's facts.
        let s = Snapshot::of(facts, &Followed::default());
        assert_eq!(s.limit, None);
        // A number's own limit: any number's without a display number; with one, only its own.
        let facts = vec![
            fact(HealthKind::Account, OURS, "messaging_limit", "2000", 1),
            fact(HealthKind::Number, "15550000001", "messaging_limit", "250", 2),
        ];
        assert_eq!(Snapshot::of(facts.clone(), &followed).limit, Some(Some(250)));
        let with_number = Followed { number: Some("15550783881".into()), ..followed };
        assert_eq!(Snapshot::of(facts.clone(), &with_number).limit, Some(Some(2000)));
        let mut ours = facts;
        ours.push(fact(HealthKind::Number, "15550783881", "messaging_limit", "unlimited", 3));
        assert_eq!(Snapshot::of(ours, &with_number).limit, Some(None));
    }

    #[test]
    fn whose() {
        let followed = Followed { account: Some(OURS.into()), number: None };
        assert_eq!(followed.whose(OURS), Whose::Ours);
        assert_eq!(followed.whose(THEIRS), Whose::OtherAccount);
        assert_eq!(followed.whose(""), Whose::OtherAccount);
        assert_eq!(Followed::default().whose(OURS), Whose::NoAccountKnown);
    }
}
