//! Property tests of auth-service's decoders of untrusted input: usernames, passwords and the
//! `x-forwarded-for` header. Any input is answered without a panic; a name that passes the
//! rules is one Login can find; the client address is the peer or an address the header
//! named. `PROPTEST_CASES` sets the number of cases (256 by default, as CI runs them).

use std::net::{IpAddr, SocketAddr};

use auth_service::{
    accounts::{check_new_account, could_exist, normalize_username},
    caller::{parse_network, TrustedProxies},
    password::policy_violation,
};
use bookstore_contract::error::Violations;
use proptest::prelude::*;
use tonic::{metadata::MetadataValue, transport::server::TcpConnectInfo, Request};

fn from(peer: &str, forwarded: &[String]) -> Request<()> {
    let mut request = Request::new(());
    request.extensions_mut().insert(TcpConnectInfo {
        local_addr: None,
        remote_addr: Some(SocketAddr::new(peer.parse().expect("ip"), 40000)),
    });
    for value in forwarded {
        if let Ok(value) = MetadataValue::try_from(value.as_str()) {
            request.metadata_mut().append("x-forwarded-for", value);
        }
    }
    request
}

proptest! {
    #[test]
    fn a_username_that_passes_the_rules_is_one_login_can_find(name in ".{0,50}") {
        let normalized = normalize_username(&name);
        prop_assert_eq!(normalize_username(&normalized), normalized.clone(), "idempotent");
        let mut v = Violations::default();
        check_new_account(&mut v, Some(("username", &normalized)), ("password", "a long enough passphrase"));
        if v.is_empty() {
            prop_assert!(could_exist(&normalized));
        }
    }

    #[test]
    fn any_password_is_judged_without_a_panic(password in ".{0,200}") {
        let verdict = policy_violation(&password);
        let chars = password.chars().count();
        if !(12..=128).contains(&chars) {
            prop_assert!(verdict.is_some(), "{} code points", chars);
        }
    }

    #[test]
    fn the_client_is_the_peer_or_an_address_the_header_named(
        forwarded in prop::collection::vec(".{0,60}|([0-9]{1,3}\\.){3}[0-9]{1,3}(, *([0-9]{1,3}\\.){3}[0-9]{1,3}){0,4}", 0..4),
        trusted in any::<bool>(),
    ) {
        let proxies = TrustedProxies::new(if trusted {
            vec![parse_network("10.0.0.0/8").expect("cidr")]
        } else {
            Vec::new()
        });
        let client = proxies.client(&from("10.1.2.3", &forwarded)).0.expect("an address");
        let named: Vec<IpAddr> = forwarded
            .iter()
            .flat_map(|line| line.split(','))
            .filter_map(|entry| entry.trim().parse().ok())
            .collect();
        let peer: IpAddr = "10.1.2.3".parse().expect("ip");
        prop_assert!(client == peer || (trusted && named.contains(&client)), "{client}");
        if !trusted {
            prop_assert_eq!(client, peer, "an untrusted peer's header is ignored");
        }
    }

    #[test]
    fn any_trusted_proxies_entry_is_parsed_or_refused_with_a_message(entry in ".{0,50}") {
        if let Err(message) = parse_network(&entry) {
            prop_assert!(message.contains("is not an address or CIDR network"));
        }
    }
}
