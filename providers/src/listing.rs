//! What the HTTP APIs list, read the same way by every provider: a TTL field of a listed JSON
//! object, and a listing's records without what a removal keeps beside each (an id, the value
//! as the API holds it).

use serde_json::Value;

use crate::Record;

/// The TTL in field `key` of a listed object; `None` when it is missing, not a number or past
/// `u32`.
pub(crate) fn ttl_field(item: &Value, key: &str) -> Option<u32> {
    item.get(key)
        .and_then(Value::as_u64)
        .and_then(|t| u32::try_from(t).ok())
}

/// The records of a listing (the zone it was read from, each record with what a removal
/// needs), without the rest.
pub(crate) fn records_only<Z, K>(listing: (Z, Vec<(K, Record)>)) -> Vec<Record> {
    listing.1.into_iter().map(|(_, r)| r).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::ttl_field;

    #[test]
    fn ttls_read_and_refused() {
        assert_eq!(ttl_field(&json!({"ttl": 300}), "ttl"), Some(300));
        assert_eq!(ttl_field(&json!({"expire": 60}), "expire"), Some(60));
        assert_eq!(ttl_field(&json!({"ttl": "300"}), "ttl"), None);
        assert_eq!(ttl_field(&json!({"ttl": 4_294_967_296_u64}), "ttl"), None);
        assert_eq!(ttl_field(&json!({}), "ttl"), None);
    }
}
