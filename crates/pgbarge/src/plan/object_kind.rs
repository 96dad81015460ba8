//! The kinds of objects a plan creates besides the tables, as counted for reports.

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

/// A kind of object counted in [`SchemaPlan::counts`](super::SchemaPlan::counts) and
/// the run's report: `3 views, 1 policy`.
///
/// Serialised as its plural (`"views"`, `"foreign keys"`), the keys of the JSON
/// `objects` map and of a run saved in the ledger. Ordered by that plural too, so that
/// counts list alphabetically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ObjectKind {
    Aggregate,
    Cast,
    Collation,
    Comment,
    Extension,
    ForeignKey,
    Function,
    Grant,
    MaterializedView,
    Operator,
    Policy,
    Procedure,
    Rule,
    Sequence,
    TextSearchConfiguration,
    TextSearchDictionary,
    Trigger,
    Type,
    View,
    /// An object of none of the kinds above.
    Other,
}

impl ObjectKind {
    /// Every kind.
    pub const ALL: [ObjectKind; 20] = [
        ObjectKind::Aggregate,
        ObjectKind::Cast,
        ObjectKind::Collation,
        ObjectKind::Comment,
        ObjectKind::Extension,
        ObjectKind::ForeignKey,
        ObjectKind::Function,
        ObjectKind::Grant,
        ObjectKind::MaterializedView,
        ObjectKind::Operator,
        ObjectKind::Policy,
        ObjectKind::Procedure,
        ObjectKind::Rule,
        ObjectKind::Sequence,
        ObjectKind::TextSearchConfiguration,
        ObjectKind::TextSearchDictionary,
        ObjectKind::Trigger,
        ObjectKind::Type,
        ObjectKind::View,
        ObjectKind::Other,
    ];

    /// One of them: `view`, `policy`.
    pub fn singular(self) -> &'static str {
        match self {
            ObjectKind::Aggregate => "aggregate",
            ObjectKind::Cast => "cast",
            ObjectKind::Collation => "collation",
            ObjectKind::Comment => "comment",
            ObjectKind::Extension => "extension",
            ObjectKind::ForeignKey => "foreign key",
            ObjectKind::Function => "function",
            ObjectKind::Grant => "grant",
            ObjectKind::MaterializedView => "materialized view",
            ObjectKind::Operator => "operator",
            ObjectKind::Policy => "policy",
            ObjectKind::Procedure => "procedure",
            ObjectKind::Rule => "rule",
            ObjectKind::Sequence => "sequence",
            ObjectKind::TextSearchConfiguration => "text search configuration",
            ObjectKind::TextSearchDictionary => "text search dictionary",
            ObjectKind::Trigger => "trigger",
            ObjectKind::Type => "type",
            ObjectKind::View => "view",
            ObjectKind::Other => "object",
        }
    }

    /// Several of them: `views`, `policies`.
    pub fn plural(self) -> &'static str {
        match self {
            ObjectKind::Aggregate => "aggregates",
            ObjectKind::Cast => "casts",
            ObjectKind::Collation => "collations",
            ObjectKind::Comment => "comments",
            ObjectKind::Extension => "extensions",
            ObjectKind::ForeignKey => "foreign keys",
            ObjectKind::Function => "functions",
            ObjectKind::Grant => "grants",
            ObjectKind::MaterializedView => "materialized views",
            ObjectKind::Operator => "operators",
            ObjectKind::Policy => "policies",
            ObjectKind::Procedure => "procedures",
            ObjectKind::Rule => "rules",
            ObjectKind::Sequence => "sequences",
            ObjectKind::TextSearchConfiguration => "text search configurations",
            ObjectKind::TextSearchDictionary => "text search dictionaries",
            ObjectKind::Trigger => "triggers",
            ObjectKind::Type => "types",
            ObjectKind::View => "views",
            ObjectKind::Other => "objects",
        }
    }
}

/// By plural, as the counts were listed when they were keyed by it.
impl Ord for ObjectKind {
    fn cmp(&self, other: &Self) -> Ordering {
        self.plural().cmp(other.plural())
    }
}

impl PartialOrd for ObjectKind {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Serialize for ObjectKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.plural())
    }
}

impl<'de> Deserialize<'de> for ObjectKind {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let plural = String::deserialize(d)?;
        ObjectKind::ALL
            .into_iter()
            .find(|k| k.plural() == plural)
            .ok_or_else(|| {
                let expected: Vec<&str> = ObjectKind::ALL.iter().map(|k| k.plural()).collect();
                serde::de::Error::custom(format!(
                    "unknown kind of object {plural:?}, expected one of {}",
                    expected.join(", ")
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names_are_distinct_and_listed_alphabetically() {
        let plurals: Vec<&str> = ObjectKind::ALL.iter().map(|k| k.plural()).collect();
        let mut sorted = plurals.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), ObjectKind::ALL.len(), "plurals are distinct");
        let mut kinds = ObjectKind::ALL.to_vec();
        kinds.sort();
        let ordered: Vec<&str> = kinds.iter().map(|k| k.plural()).collect();
        assert_eq!(ordered, sorted);
    }

    #[test]
    fn counts_serialise_as_plural_keys_and_read_back() {
        let counts = BTreeMap::from([(ObjectKind::Policy, 2), (ObjectKind::ForeignKey, 1)]);
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(json, r#"{"foreign keys":1,"policies":2}"#);
        let back: BTreeMap<ObjectKind, usize> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, counts);
        assert!(serde_json::from_str::<BTreeMap<ObjectKind, usize>>(r#"{"widgets":1}"#).is_err());
    }
}
