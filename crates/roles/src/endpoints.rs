//! Which addresses a role may call at an endpoint that someone else named.
//!
//! A miner's or provider's endpoint comes from a registration on chain: anyone can write
//! `http://127.0.0.1:6379` or `http://169.254.169.254/` there and have the gateway or a
//! validator probe it (a blind SSRF). So by default only public addresses are reached: the URL's
//! host is checked, and names are resolved through a resolver that drops every address outside
//! the public ranges (so a name cannot point at one either). Redirects are never followed. A
//! devnet, where every miner listens on loopback, allows any address.

use std::{
    net::{IpAddr, Ipv4Addr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Which addresses an endpoint named by someone else may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EndpointPolicy {
    /// Public addresses only: no loopback, private, link-local, shared, multicast or reserved
    /// range (the default).
    #[default]
    PublicOnly,
    /// Any address, for a devnet or a private network whose miners are on local addresses.
    AnyAddress,
}

impl EndpointPolicy {
    /// `AnyAddress` if `allow_private`, else `PublicOnly`.
    pub fn allowing_private(allow_private: bool) -> EndpointPolicy {
        if allow_private {
            EndpointPolicy::AnyAddress
        } else {
            EndpointPolicy::PublicOnly
        }
    }

    /// Checks that `url` is an http(s) URL this policy lets a role call; says why not otherwise.
    /// A name is checked again, address by address, when the client resolves it.
    pub fn check(self, url: &str) -> Result<(), String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url:?} is not an http:// or https:// URL"));
        }
        if self == EndpointPolicy::AnyAddress {
            return Ok(());
        }
        let refused = |what: &str| {
            Err(format!(
                "{url:?} is {what}; only public addresses are called (a devnet, or \
                 --allow-private-endpoints, allows any)"
            ))
        };
        match parsed.host() {
            None => Err(format!("{url:?} has no host")),
            Some(url::Host::Ipv4(ip)) if !is_public(IpAddr::V4(ip)) => {
                refused("a loopback, private or reserved address")
            }
            Some(url::Host::Ipv6(ip)) if !is_public(IpAddr::V6(ip)) => {
                refused("a loopback, private or reserved address")
            }
            Some(url::Host::Domain(name)) if is_local_name(name) => refused("a local name"),
            Some(_) => Ok(()),
        }
    }

    /// An HTTP client for endpoints under this policy: names resolve only to addresses the
    /// policy allows, redirects are not followed, and connecting gives up after
    /// `connect_timeout`.
    pub fn client(self, connect_timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
        let builder = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .redirect(reqwest::redirect::Policy::none());
        match self {
            EndpointPolicy::PublicOnly => builder.dns_resolver(Arc::new(PublicResolver)).build(),
            EndpointPolicy::AnyAddress => builder.build(),
        }
    }
}

/// `localhost` and its subdomains, which resolve to loopback without asking DNS.
fn is_local_name(name: &str) -> bool {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `ip` is a globally reachable unicast address (IANA special-purpose registries).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            let embeds_v4 = (s[0] == 0x64 && s[1] == 0xff9b) || s[..6] == [0; 6];
            if embeds_v4 {
                // NAT64 (64:ff9b::/96) and the deprecated IPv4-compatible form carry an IPv4
                // address in their last 32 bits; judge that one.
                let o = v6.octets();
                return is_public_v4(Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            }
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x2001 && s[1] < 0x0200) // IETF protocol assignments (Teredo, ORCHID…)
                || s[0] == 0x2002 // 6to4
                || (s[0] == 0x0100 && s[1..4] == [0, 0, 0])) // discard-only 100::/64
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0 // "this network"
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 169 && b == 254) // link-local, cloud metadata
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 192 && b == 88 && c == 99) // 6to4 relay anycast
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224) // multicast, reserved, broadcast
}

/// Resolves names with the system resolver and keeps only public addresses.
struct PublicResolver;

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address; only public addresses are called"
                )
                .into());
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_link_local_and_reserved_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2001:db8::1",
            "ff02::1",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(!is_public(ip), "{ip} was taken for public");
        }
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            assert!(is_public(ip), "{ip} was taken for private");
        }
    }

    #[test]
    fn the_default_policy_refuses_local_urls_and_a_devnet_allows_them() {
        let public = EndpointPolicy::default();
        for url in [
            "http://127.0.0.1:8090",
            "http://[::1]:8090/",
            "http://169.254.169.254/latest/meta-data",
            "http://localhost:6379",
            "http://api.localhost./",
            "http://10.0.0.7",
            "http://0x7f000001/",
            "http://2130706433/",
        ] {
            let e = public.check(url).unwrap_err();
            assert!(e.contains("only public addresses"), "{url}: {e}");
            assert_eq!(EndpointPolicy::AnyAddress.check(url), Ok(()));
        }
        assert!(public.check("https://miner.example.org:8443/").is_ok());
        assert!(public.check("http://8.8.8.8/").is_ok());
        assert!(public.check("ftp://8.8.8.8/").is_err());
        assert!(public.check("not a url").is_err());
    }

    /// A loopback server answering `/health` with 200 and `/away` with a redirect to the
    /// cloud metadata address; its port.
    async fn local_server() -> u16 {
        use axum::{Router, http::header, response::IntoResponse, routing::get};
        let app = Router::new()
            .route("/health", get(|| async { "ok" }))
            .route(
                "/away",
                get(|| async {
                    (
                        axum::http::StatusCode::FOUND,
                        [(header::LOCATION, "http://169.254.169.254/")],
                    )
                        .into_response()
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        port
    }

    /// A name that resolves to loopback is refused when the client connects, so a miner cannot
    /// get around the URL check with its own DNS record; a devnet's client reaches it.
    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_not_reached_by_the_public_client() {
        let port = local_server().await;
        // `localhost` goes through the resolver like any name once past the URL check.
        let url = format!("http://localhost:{port}/health");
        let public = EndpointPolicy::PublicOnly
            .client(Duration::from_secs(2))
            .unwrap();
        let err = public.get(&url).send().await.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        let any = EndpointPolicy::AnyAddress
            .client(Duration::from_secs(2))
            .unwrap();
        let answer = any.get(&url).send().await.unwrap();
        assert_eq!(answer.status(), 200);
    }

    /// An endpoint cannot bounce the client to a private address with a redirect.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        let port = local_server().await;
        let any = EndpointPolicy::AnyAddress
            .client(Duration::from_secs(2))
            .unwrap();
        let answer = any
            .get(format!("http://127.0.0.1:{port}/away"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 302);
    }
}
