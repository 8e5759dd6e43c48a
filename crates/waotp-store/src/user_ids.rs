//! What a business-scoped user id (BSUID) stands for (issue 31): Meta names a WhatsApp user by
//! a BSUID, and for a user who adopted a username leaves their number out of the messages they
//! send. Reverse verification proves a number from its sender, so the number behind a BSUID is
//! learned from the webhooks that name both (table `whatsapp_user_ids`), per business, and
//! followed when Meta reports a changed BSUID. The rules are here, once, for both backends
//! ([`plan_pair`]); a backend loads the row and writes what they say.

use std::fmt;

/// The business a parent BSUID is kept under: one enterprise's portfolios share it.
pub const PARENT_BUSINESS: &str = "parent";

/// How often a pair Meta keeps naming is written again (its `seen_at`, which retention reads).
pub const REFRESH_MS: i64 = crate::DAY_MS;

/// A BSUID within its business (the WhatsApp Business Account the webhook came for, or
/// [`PARENT_BUSINESS`]).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct UserKey {
    pub business: String,
    pub user_id: String,
}

impl UserKey {
    pub fn new(business: &str, user_id: &str) -> Self {
        UserKey { business: business.to_owned(), user_id: user_id.to_owned() }
    }

    pub fn parent(user_id: &str) -> Self {
        UserKey::new(PARENT_BUSINESS, user_id)
    }
}

impl fmt::Debug for UserKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.business, waotp_core::msisdn::mask_user_id(&self.user_id))
    }
}

/// What a webhook taught about BSUIDs.
#[derive(Clone, PartialEq, Eq)]
pub enum UserIdFact {
    /// Meta named the user by both: `key` stands for `wa_id` (digits), and no other BSUID of
    /// the business does.
    Pair { key: UserKey, wa_id: String },
    /// The user's BSUID changed: `previous` names nobody any more. Meta makes a new BSUID when a
    /// user changes number, so `current` never inherits the number `previous` stood for: it
    /// stands for `wa_id` when Meta gives it (and then the number `previous` stood for, if
    /// another, is left: [`UserIdFact::LeftNumber`]); without it `current` stays as it was.
    Moved { previous: UserKey, current: Option<UserKey>, wa_id: Option<String> },
    /// The user left this number: no BSUID of the business stands for it any more.
    LeftNumber { business: String, wa_id: String },
}

impl fmt::Debug for UserIdFact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let number = |n: &str| waotp_core::msisdn::mask(n);
        match self {
            UserIdFact::Pair { key, wa_id } => write!(f, "Pair({key:?} = {})", number(wa_id)),
            UserIdFact::Moved { previous, current, .. } => write!(f, "Moved({previous:?} -> {current:?})"),
            UserIdFact::LeftNumber { business, wa_id } => write!(f, "LeftNumber({business}/{})", number(wa_id)),
        }
    }
}

/// What a [`UserIdFact::Pair`] writes, given the key's stored row (`wa_id`, `seen_at`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PairWrite {
    /// Known and seen recently: nothing.
    Nothing,
    /// Known, last written over [`REFRESH_MS`] ago: `seen_at` only.
    Refresh,
    /// New, or standing for another number: other BSUIDs of the number go, this one is written.
    Replace,
}

/// The rule for a pair: a write at most once a day per pair Meta keeps naming (each status of
/// each message names it), a full one when it is new or changed.
pub fn plan_pair(stored: Option<(&str, i64)>, wa_id: &str, now_ms: i64) -> PairWrite {
    match stored {
        Some((stored, seen_at)) if stored == wa_id => {
            if now_ms.saturating_sub(seen_at) >= REFRESH_MS {
                PairWrite::Refresh
            } else {
                PairWrite::Nothing
            }
        }
        _ => PairWrite::Replace,
    }
}

/// What a [`UserIdFact::Moved`] writes once its previous BSUID is deleted (it stood for
/// `stored`): the number left behind, if the user now has another, and the pair of the current
/// BSUID, only with a number Meta gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MoveWrite {
    pub left: Option<String>,
    pub pair: Option<(UserKey, String)>,
}

pub fn plan_move(stored: Option<String>, current: Option<&UserKey>, given: Option<&str>) -> MoveWrite {
    let left = stored.filter(|old| given.is_some_and(|new| new != old));
    let pair = current.zip(given).map(|(key, number)| (key.clone(), number.to_owned()));
    MoveWrite { left, pair }
}

/// Whether a new pair removes the number's other BSUIDs of the business: within a business a
/// number has one BSUID at a time; a number may have a parent BSUID in each enterprise it
/// writes to, so parent rows are only ever replaced by key.
pub fn replaces_others(key: &UserKey) -> bool {
    key.business != PARENT_BUSINESS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_is_written_when_new_or_changed_and_refreshed_daily() {
        assert_eq!(plan_pair(None, "62811", 5), PairWrite::Replace);
        assert_eq!(plan_pair(Some(("62811", 0)), "62899", 5), PairWrite::Replace);
        assert_eq!(plan_pair(Some(("62811", 0)), "62811", REFRESH_MS - 1), PairWrite::Nothing);
        assert_eq!(plan_pair(Some(("62811", 0)), "62811", REFRESH_MS), PairWrite::Refresh);
    }

    #[test]
    fn a_move_never_carries_the_number_the_previous_bsuid_stood_for() {
        let current = UserKey::new("waba", "ID.2");
        // no number given: the current BSUID stays unknown (the user changed number)
        assert_eq!(plan_move(Some("62811".into()), Some(&current), None), MoveWrite { left: None, pair: None });
        // a new number given: the old one is left, the current BSUID stands for the new
        assert_eq!(
            plan_move(Some("62811".into()), Some(&current), Some("62899")),
            MoveWrite { left: Some("62811".into()), pair: Some((current.clone(), "62899".into())) }
        );
        // the same number given: nothing left
        assert_eq!(
            plan_move(Some("62811".into()), Some(&current), Some("62811")),
            MoveWrite { left: None, pair: Some((current, "62811".into())) }
        );
        assert!(!replaces_others(&UserKey::parent("ID.ENT.1")) && replaces_others(&UserKey::new("1", "ID.1")));
    }

    #[test]
    fn debug_masks() {
        let fact =
            UserIdFact::Pair { key: UserKey::new("waba", "US.13491208655302741918"), wa_id: "6281234567890".into() };
        let shown = format!("{fact:?}");
        assert!(!shown.contains("13491208655302741918") && !shown.contains("6281234567890"), "{shown}");
    }
}
