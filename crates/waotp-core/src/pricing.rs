//! What Meta says a message costs: the `pricing` object of a status webhook, as waotp keeps
//! it. Meta bills per delivered message (per-message pricing, since July 2025); each
//! message's pricing is recorded once, with its session (see `waotp_store::CostStore`).

/// The longest value of a pricing field kept (Meta's are a few words; an unknown value is
/// kept as given, cut to this many characters).
pub const MAX_FIELD_CHARS: usize = 64;

/// A message's pricing, as Meta reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessagePricing {
    /// Whether Meta charges for the message: `billable` as given, or, without it (Meta has
    /// announced its removal), whether `type` is `regular`.
    pub billable: bool,
    /// `authentication`, `authentication_international`, `marketing`, `marketing_lite`,
    /// `utility`, `service`, `referral_conversion`, … (kept as given).
    pub category: String,
    /// `PMP` (per-message pricing), `CBP` (the older conversation-based pricing); empty when
    /// absent.
    pub pricing_model: String,
    /// `regular`, `free_customer_service`, `free_entry_point`, …; `None` when absent.
    pub pricing_type: Option<String>,
}

/// The categories a metric label names as themselves; any other is `other`.
pub const KNOWN_CATEGORIES: [&str; 7] = [
    "authentication",
    "authentication_international",
    "marketing",
    "marketing_lite",
    "utility",
    "service",
    "referral_conversion",
];

impl MessagePricing {
    /// A pricing from its fields as a webhook gives them: `None` (no cost is recorded) without
    /// a category, or when neither `billable` nor `type` says whether it is charged.
    pub fn from_fields(
        billable: Option<bool>,
        category: Option<&str>,
        pricing_model: Option<&str>,
        pricing_type: Option<&str>,
    ) -> Option<MessagePricing> {
        let cut = |s: &str| s.trim().chars().take(MAX_FIELD_CHARS).collect::<String>();
        let category = cut(category?);
        let pricing_type = pricing_type.map(cut).filter(|t| !t.is_empty());
        let billable = billable.or_else(|| pricing_type.as_deref().map(|t| t == "regular"))?;
        if category.is_empty() {
            return None;
        }
        Some(MessagePricing {
            billable,
            category,
            pricing_model: pricing_model.map(cut).unwrap_or_default(),
            pricing_type,
        })
    }

    /// The category as a metric label: one of [`KNOWN_CATEGORIES`] (Meta also writes
    /// `authentication-international`), else `other`, so the label's values stay few.
    pub fn category_label(category: &str) -> &'static str {
        let normal = category.to_ascii_lowercase().replace('-', "_");
        KNOWN_CATEGORIES.into_iter().find(|k| *k == normal).unwrap_or("other")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billable_comes_from_billable_or_the_type() {
        let p = MessagePricing::from_fields(None, Some("authentication"), Some("PMP"), Some("regular")).unwrap();
        assert!(p.billable);
        let p = MessagePricing::from_fields(None, Some("utility"), Some("PMP"), Some("free_customer_service")).unwrap();
        assert!(!p.billable);
        let p = MessagePricing::from_fields(Some(false), Some("authentication"), None, Some("regular")).unwrap();
        assert!(!p.billable, "billable as given wins");
        assert_eq!(p.pricing_model, "");
        assert_eq!(MessagePricing::from_fields(None, Some("utility"), Some("CBP"), None), None);
        assert_eq!(MessagePricing::from_fields(Some(true), None, Some("PMP"), Some("regular")), None);
        assert_eq!(MessagePricing::from_fields(Some(true), Some(" "), None, None), None);
        let long = "x".repeat(500);
        let p = MessagePricing::from_fields(Some(true), Some(&long), Some(&long), Some(&long)).unwrap();
        assert_eq!((p.category.len(), p.pricing_model.len()), (MAX_FIELD_CHARS, MAX_FIELD_CHARS));
    }

    #[test]
    fn categories_outside_the_known_set_are_other() {
        assert_eq!(MessagePricing::category_label("authentication"), "authentication");
        assert_eq!(MessagePricing::category_label("authentication-international"), "authentication_international");
        assert_eq!(MessagePricing::category_label("MARKETING_LITE"), "marketing_lite");
        assert_eq!(MessagePricing::category_label("something_new"), "other");
    }
}
