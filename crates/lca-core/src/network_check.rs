//! Whether a seed's networks fit the node it is installed on (spec §6.4 steps 5 and 6): the
//! seed and the target must have as many node IPs, of the same family at each index; the
//! target's machine networks must pair with its node IPs by family; a seed with machine
//! networks must have as many, in the same family order. Upstream checks this only after
//! the reboot; Prep checks it too, so a mismatched seed fails before the maintenance window.
//! Also the `noProxy` that post-pivot computes when the target has a proxy and no status.

use std::net::IpAddr;

/// IPv4 or IPv6, of an address or a CIDR (`None`: neither).
fn family(s: &str) -> Option<u8> {
    let addr = s.split('/').next()?.trim();
    match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(_) => Some(4),
        IpAddr::V6(_) => Some(6),
    }
}

fn families(list: &[String], what: &str) -> Result<Vec<u8>, String> {
    list.iter()
        .map(|s| family(s).ok_or_else(|| format!("invalid {what} {s:?}: not an IP address or CIDR")))
        .collect()
}

/// The node IPs and machine networks of each side.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Networks {
    pub node_ips: Vec<String>,
    pub machine_networks: Vec<String>,
}

/// `Ok` when `target` can run the seed's cluster made from `seed`; the error says why not.
pub fn check(seed: &Networks, target: &Networks) -> Result<(), String> {
    let seed_ips = families(&seed.node_ips, "seed node IP")?;
    let target_ips = families(&target.node_ips, "node IP")?;
    if seed_ips.len() != target_ips.len() {
        return Err(format!(
            "the seed has {} node IP(s) ({}) and the node {} ({}): seed and target must be both single-stack or both dual-stack",
            seed_ips.len(),
            seed.node_ips.join(", "),
            target_ips.len(),
            target.node_ips.join(", ")
        ));
    }
    if let Some(i) = (0..seed_ips.len()).find(|&i| seed_ips[i] != target_ips[i]) {
        return Err(format!(
            "IP family mismatch: the seed's node IP {} is IPv{} and the node's {} is IPv{}",
            seed.node_ips[i], seed_ips[i], target.node_ips[i], target_ips[i]
        ));
    }
    let target_nets = families(&target.machine_networks, "machine network")?;
    if !target_nets.is_empty() && target_nets != target_ips {
        return Err(format!(
            "the node's machine networks ({}) do not match its node IPs ({}) in number and IP family",
            target.machine_networks.join(", "),
            target.node_ips.join(", ")
        ));
    }
    let seed_nets = families(&seed.machine_networks, "seed machine network")?;
    if !seed_nets.is_empty() && !target_nets.is_empty() && seed_nets != target_nets {
        return Err(format!(
            "the seed's machine networks ({}) and the node's ({}) differ in number or IP family order",
            seed.machine_networks.join(", "),
            target.machine_networks.join(", ")
        ));
    }
    Ok(())
}

/// The `noProxy` of a target proxy without a status: what the cluster itself must reach
/// directly, then the user's own entries.
pub fn no_proxy(
    user: &str,
    cluster_name: &str,
    base_domain: &str,
    machine_networks: &[String],
    service_networks: &[String],
    cluster_networks: &[String],
) -> String {
    let mut out: Vec<String> = ["127.0.0.1", "localhost", ".svc", ".cluster.local"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    out.push(format!("api-int.{cluster_name}.{base_domain}"));
    out.extend(machine_networks.iter().cloned());
    out.extend(service_networks.iter().cloned());
    out.extend(cluster_networks.iter().cloned());
    for entry in user.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        out.push(entry.to_string());
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|e| seen.insert(e.clone()));
    out.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(ips: &[&str], nets: &[&str]) -> Networks {
        Networks {
            node_ips: ips.iter().map(|s| s.to_string()).collect(),
            machine_networks: nets.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn families_must_pair_up() {
        let v4 = n(&["192.168.1.10"], &["192.168.1.0/24"]);
        let v6 = n(&["fd00::10"], &["fd00::/64"]);
        let dual = n(&["192.168.1.10", "fd00::10"], &["192.168.1.0/24", "fd00::/64"]);
        assert_eq!(check(&v4, &v4), Ok(()));
        assert_eq!(check(&dual, &dual), Ok(()));
        assert_eq!(
            check(&v4, &v6).unwrap_err(),
            "IP family mismatch: the seed's node IP 192.168.1.10 is IPv4 and the node's fd00::10 is IPv6"
        );
        assert!(
            check(&v4, &dual)
                .unwrap_err()
                .contains("both single-stack or both dual-stack")
        );
        let swapped = n(&["192.168.1.10", "fd00::10"], &["fd00::/64", "192.168.1.0/24"]);
        assert!(check(&dual, &swapped).unwrap_err().contains("machine networks"));
        assert!(
            check(&n(&["x"], &[]), &v4)
                .unwrap_err()
                .contains("not an IP address")
        );
        // A seed without machine networks (older seeds) fits any target.
        assert_eq!(check(&n(&["10.0.0.1"], &[]), &v4), Ok(()));
    }

    #[test]
    fn no_proxy_lists_the_cluster_first_without_duplicates() {
        let np = no_proxy(
            "example.org, localhost",
            "sno",
            "example.com",
            &["192.168.1.0/24".into()],
            &["172.30.0.0/16".into()],
            &["10.128.0.0/14".into()],
        );
        assert_eq!(
            np,
            "127.0.0.1,localhost,.svc,.cluster.local,api-int.sno.example.com,192.168.1.0/24,172.30.0.0/16,10.128.0.0/14,example.org"
        );
    }
}
