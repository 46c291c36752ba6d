//! `metalhost run`'s one-line summary of the fleet: how many hosts, how many in each state.

use std::collections::BTreeMap;

use metalhost_api::{BareMetalHostStatus, OperationalStatus};

/// `12 hosts: 10 provisioned, 2 provisioning`, most common state first, with the hosts in error
/// counted at the end (`, 1 in error`) and not in their state: the counts add up to the total.
pub fn line<'a>(statuses: impl IntoIterator<Item = &'a BareMetalHostStatus>) -> String {
    let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut total, mut errors) = (0, 0);
    for status in statuses {
        total += 1;
        if status.operational_status == OperationalStatus::Error {
            errors += 1;
            continue;
        }
        let state = status.provisioning.state.as_str();
        *by_state.entry(if state.is_empty() { "new" } else { state }).or_default() += 1;
    }
    let mut counts: Vec<(&str, usize)> = by_state.into_iter().collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    let noun = if total == 1 { "host" } else { "hosts" };
    let mut out = format!("{total} {noun}");
    if !counts.is_empty() {
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        out.push_str(&format!(": {}", parts.join(", ")));
    }
    if errors > 0 {
        out.push_str(&format!(", {errors} in error"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use metalhost_api::ProvisioningState;

    #[test]
    fn counts_hosts_per_state_most_common_first() {
        let mut statuses = Vec::new();
        for (state, n) in [(ProvisioningState::Provisioning, 2), (ProvisioningState::Provisioned, 10)] {
            for _ in 0..n {
                let mut s = BareMetalHostStatus::default();
                s.provisioning.state = state;
                statuses.push(s);
            }
        }
        assert_eq!(line(&statuses), "12 hosts: 10 provisioned, 2 provisioning");
        statuses[0].operational_status = OperationalStatus::Error;
        assert_eq!(line(&statuses[..1]), "1 host, 1 in error");
        assert_eq!(
            line(&statuses[..3]),
            "3 hosts: 1 provisioned, 1 provisioning, 1 in error",
            "counts add up"
        );
        assert_eq!(line(&[]), "0 hosts");
    }
}
