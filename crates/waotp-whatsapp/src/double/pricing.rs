//! The `pricing` object of the double's status webhooks (per-message pricing, as Meta reports
//! it since July 2025).

use serde_json::{json, Value};

/// The `pricing` object of the double's status webhooks, as Meta sends it: on `sent`, and on
/// the first of `delivered` or `read`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DoublePricing {
    pub billable: bool,
    pub category: String,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    pub pricing_type: String,
}

impl DoublePricing {
    /// Per-message pricing (`PMP`) of `category` and `pricing_type`, billable when the type is
    /// `regular` (as Meta's are).
    pub fn new(category: &str, pricing_type: &str) -> Self {
        DoublePricing {
            billable: pricing_type == "regular",
            category: category.to_owned(),
            pricing_type: pricing_type.to_owned(),
        }
    }

    pub(super) fn json(&self) -> Value {
        json!({ "billable": self.billable, "pricing_model": "PMP", "type": self.pricing_type, "category": self.category })
    }
}
