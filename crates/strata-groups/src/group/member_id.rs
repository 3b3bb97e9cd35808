//! Member ids as Kafka makes them: the client's `client.id` (or, for a
//! static member, its `group.instance.id`), a dash, and a random UUID.
//! Clients' assignors order members by id, so ids that start with the
//! client's own name give assignments that follow the names the operator
//! chose, not the order in which members happened to join.

use strata_log::TopicId;

/// A fresh member id: `prefix` + `-` + a random UUID in its usual text form.
pub fn new_member_id(prefix: &str) -> String {
    // The topic-id generator makes random ids in UUID version 4 layout.
    let bytes = TopicId::random().0;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut id = String::with_capacity(prefix.len() + 37);
    id.push_str(prefix);
    id.push('-');
    for (i, c) in hex.chars().enumerate() {
        if matches!(i, 8 | 12 | 16 | 20) {
            id.push('-');
        }
        id.push(c);
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_uuid(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && groups
                .iter()
                .all(|g| g.chars().all(|c| c.is_ascii_hexdigit()))
    }

    #[test]
    fn client_id_then_dash_then_uuid() {
        let id = new_member_id("consumer-1");
        let uuid = id.strip_prefix("consumer-1-").unwrap_or_default();
        assert!(is_uuid(uuid), "{id}");
        assert_eq!(uuid.as_bytes()[14], b'4', "UUID version 4: {id}");
        assert_ne!(new_member_id("consumer-1"), id, "ids are unique");
        // An empty client.id still gives "-" + UUID, as Kafka does.
        assert!(is_uuid(new_member_id("").trim_start_matches('-')));
    }
}
