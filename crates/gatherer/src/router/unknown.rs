//! Capping the labels of unknown message types: the exchange controls those names, and a
//! metric's label set must not grow without bound.

use std::collections::HashSet;

/// Distinct unknown-type labels kept before the rest are counted as `other`.
const MAX_UNKNOWN_LABELS: usize = 32;

/// The labels given so far.
#[derive(Debug, Default)]
pub(super) struct UnknownLabels {
    seen: HashSet<String>,
}

impl UnknownLabels {
    /// The metric label for an unknown `type`: its name while few, short and plain, else
    /// `other`.
    pub(super) fn label(&mut self, type_name: &str) -> String {
        if self.seen.contains(type_name) {
            return type_name.to_owned();
        }
        if self.seen.len() < MAX_UNKNOWN_LABELS
            && type_name.len() <= 40
            && type_name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            self.seen.insert(type_name.to_owned());
            return type_name.to_owned();
        }
        "other".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_capped_and_plain() {
        let mut l = UnknownLabels::default();
        assert_eq!(l.label("new_type"), "new_type");
        assert_eq!(l.label("bad label!"), "other");
        for i in 0..40 {
            l.label(&format!("t{i}"));
        }
        assert_eq!(l.label("one_more"), "other");
        assert_eq!(l.label("new_type"), "new_type");
    }
}
