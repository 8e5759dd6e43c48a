//! Business-scoped user ids in Meta's webhooks (issue 31): what a payload teaches about the
//! numbers they stand for ([`UserIdFact`]s the store writes), and which of a sender's ids name
//! it. The pairs of a busy number repeat on every status of every message: a node remembers the
//! ones it wrote in the last hour and does not write them again.

use std::collections::HashMap;
use std::sync::Mutex;

use waotp_store::{UserIdFact, UserKey};
use waotp_whatsapp::webhook::{Identified, UserIdChange, UserIds};

/// How long a written pair is not written again by this node (the store refreshes a pair's age
/// daily: well within).
const REMEMBERED_MS: i64 = 60 * 60 * 1000;
/// Pairs remembered at most (then forgotten all at once: the cost is one write per pair).
const REMEMBERED_MAX: usize = 50_000;

/// The facts of a pair Meta named: the BSUID, and the parent BSUID where given, stand for the
/// number.
pub fn facts_of_identified(i: &Identified) -> Vec<UserIdFact> {
    let mut facts = vec![UserIdFact::Pair { key: UserKey::new(&i.business, &i.user_id), wa_id: i.wa_id.clone() }];
    if let Some(parent) = &i.parent_user_id {
        facts.push(UserIdFact::Pair { key: UserKey::parent(parent), wa_id: i.wa_id.clone() });
    }
    facts
}

/// The facts of a changed BSUID. Meta makes a new BSUID when a user changes number, so the new
/// one stands for the number Meta gives with the change, never for the one the previous BSUID
/// stood for (that number is left: its BSUIDs go). A user who changed their number
/// (`user_changed_number`, whose old form names only the numbers) leaves the old number.
pub fn facts_of_change(c: &UserIdChange) -> Vec<UserIdFact> {
    let mut facts = Vec::new();
    if let Some(left) = &c.previous_wa_id {
        facts.push(UserIdFact::LeftNumber { business: c.business.clone(), wa_id: left.clone() });
    }
    let own = |id: &String| UserKey::new(&c.business, id);
    let scopes = [
        (c.previous_user_id.as_ref().map(own), c.user_id.as_ref().map(own)),
        (c.previous_parent_user_id.as_deref().map(UserKey::parent), c.parent_user_id.as_deref().map(UserKey::parent)),
    ];
    for (previous, current) in scopes {
        match (previous, current, &c.wa_id) {
            (Some(previous), current, wa_id) => {
                facts.push(UserIdFact::Moved { previous, current, wa_id: wa_id.clone() });
            }
            (None, Some(current), Some(wa_id)) => facts.push(UserIdFact::Pair { key: current, wa_id: wa_id.clone() }),
            (None, _, _) => {}
        }
    }
    facts
}

/// The keys a sender's number is looked up by when Meta leaves it out: its BSUID within the
/// business, then its parent BSUID.
pub fn sender_keys(user: &UserIds) -> Vec<UserKey> {
    let own = user.user_id.as_deref().map(|id| UserKey::new(&user.business, id));
    let parent = user.parent_user_id.as_deref().map(UserKey::parent);
    own.into_iter().chain(parent).collect()
}

/// The pairs this node wrote lately.
#[derive(Default)]
pub struct Remembered(Mutex<HashMap<UserKey, (String, i64)>>);

impl Remembered {
    /// `facts` without the pairs this node wrote in the last [`REMEMBERED_MS`]; a change makes
    /// it forget everything it remembers (changes are rare).
    pub fn unwritten(&self, facts: Vec<UserIdFact>, now_ms: i64) -> Vec<UserIdFact> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if facts.iter().any(|f| !matches!(f, UserIdFact::Pair { .. })) {
            map.clear();
            return facts;
        }
        facts
            .into_iter()
            .filter(|fact| {
                let UserIdFact::Pair { key, wa_id } = fact else { return true };
                !matches!(map.get(key), Some((number, at)) if number == wa_id && now_ms.saturating_sub(*at) < REMEMBERED_MS)
            })
            .collect()
    }

    /// Remembers the pairs of `facts`, once the store has them.
    pub fn written(&self, facts: &[UserIdFact], now_ms: i64) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= REMEMBERED_MAX {
            map.clear();
        }
        for fact in facts {
            if let UserIdFact::Pair { key, wa_id } = fact {
                map.insert(key.clone(), (wa_id.clone(), now_ms));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change() -> UserIdChange {
        UserIdChange { business: "waba".into(), ..UserIdChange::default() }
    }

    #[test]
    fn a_pair_teaches_the_bsuid_and_its_parent() {
        let i = Identified {
            business: "waba".into(),
            wa_id: "628111".into(),
            user_id: "ID.1".into(),
            parent_user_id: Some("ID.ENT.9".into()),
        };
        assert_eq!(
            facts_of_identified(&i),
            vec![
                UserIdFact::Pair { key: UserKey::new("waba", "ID.1"), wa_id: "628111".into() },
                UserIdFact::Pair { key: UserKey::parent("ID.ENT.9"), wa_id: "628111".into() },
            ]
        );
    }

    #[test]
    fn changes_move_the_bsuid_or_leave_the_number() {
        let moved = UserIdChange { previous_user_id: Some("ID.1".into()), user_id: Some("ID.2".into()), ..change() };
        assert_eq!(
            facts_of_change(&moved),
            vec![UserIdFact::Moved {
                previous: UserKey::new("waba", "ID.1"),
                current: Some(UserKey::new("waba", "ID.2")),
                wa_id: None
            }]
        );
        // the old user_changed_number: numbers only, then the new BSUID for the new number
        let number = UserIdChange {
            previous_wa_id: Some("628111".into()),
            wa_id: Some("628222".into()),
            user_id: Some("ID.2".into()),
            ..change()
        };
        assert_eq!(
            facts_of_change(&number),
            vec![
                UserIdFact::LeftNumber { business: "waba".into(), wa_id: "628111".into() },
                UserIdFact::Pair { key: UserKey::new("waba", "ID.2"), wa_id: "628222".into() },
            ]
        );
        let parent = UserIdChange { previous_parent_user_id: Some("ID.ENT.1".into()), ..change() };
        assert_eq!(
            facts_of_change(&parent),
            vec![UserIdFact::Moved { previous: UserKey::parent("ID.ENT.1"), current: None, wa_id: None }]
        );
    }

    #[test]
    fn a_pair_written_lately_is_not_written_again_until_a_change() {
        let r = Remembered::default();
        let pair = || vec![UserIdFact::Pair { key: UserKey::new("waba", "ID.1"), wa_id: "628111".into() }];
        // not remembered before the store has it (a failed write leaves nothing behind)
        assert_eq!(r.unwritten(pair(), 0).len(), 1);
        assert_eq!(r.unwritten(pair(), 0).len(), 1);
        r.written(&pair(), 0);
        assert!(r.unwritten(pair(), 1000).is_empty());
        assert_eq!(r.unwritten(pair(), REMEMBERED_MS).len(), 1);
        let moved = vec![UserIdFact::Moved { previous: UserKey::new("waba", "ID.1"), current: None, wa_id: None }];
        assert_eq!(r.unwritten(moved, 2000).len(), 1);
        assert_eq!(r.unwritten(pair(), 2001).len(), 1, "forgotten after a change");
    }
}
