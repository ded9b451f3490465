//! Name resolution and TCP connections for validation. Every lookup goes through the
//! resolver chosen in [`ResolverConfig`]; nothing is cached from one validation to the next
//! (a fresh hickory resolver is built per lookup), so a client that fixes its DNS and
//! retries is seen at once.

use crate::{ResolverConfig, ValidationError};
use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfig, ResolveHosts, ResolverConfig as HickoryConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::xfer::Protocol;
use hickory_resolver::proto::ProtoErrorKind;
use hickory_resolver::{Name, ResolveError, TokioResolver};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::net::TcpStream;
use url::Host;

/// Resolves names and connects to what they resolve to.
#[derive(Debug)]
pub(crate) struct Net {
    /// Where A/AAAA lookups go.
    addresses: Source,
    /// The hickory configuration for TXT lookups (and A/AAAA with named servers); `None`
    /// when the system configuration could not be read (dns-01 then fails closed).
    hickory: Option<(HickoryConfig, ResolverOpts)>,
    /// The whole-attempt deadline, used to bound a connection attempt that has fallbacks.
    timeout: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The system resolver (getaddrinfo: /etc/hosts, nsswitch).
    System,
    /// hickory, pointed at the configured servers only.
    Hickory,
}

/// What a negative answer from hickory means.
enum Negative {
    /// NXDOMAIN.
    NoSuchName,
    /// The name exists but has no records of the type asked for.
    NoData,
}

impl Net {
    /// Prepares resolution as configured; lookups stay well under `timeout`.
    pub(crate) fn new(config: &ResolverConfig, timeout: Duration) -> Result<Self, ValidationError> {
        let (addresses, hickory) = match config {
            ResolverConfig::System => {
                let system = match hickory_resolver::system_conf::read_system_conf() {
                    Ok((conf, opts)) => Some((conf, opts)),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the system DNS configuration; dns-01 will fail");
                        None
                    }
                };
                (Source::System, system)
            }
            ResolverConfig::Nameservers(servers) => {
                if servers.is_empty() {
                    return Err(ValidationError::InvalidConfig(
                        "resolver: the nameserver list is empty".into(),
                    ));
                }
                let mut conf = HickoryConfig::new();
                for &addr in servers {
                    conf.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                    conf.add_name_server(NameServerConfig::new(addr, Protocol::Tcp));
                }
                let mut opts = ResolverOpts::default();
                opts.use_hosts_file = ResolveHosts::Never;
                (Source::Hickory, Some((conf, opts)))
            }
        };
        let hickory = hickory.map(|(conf, mut opts)| {
            // Two tries per server, each a third of the deadline at most.
            opts.timeout = (timeout / 3).clamp(Duration::from_millis(100), Duration::from_secs(5));
            opts.attempts = 2;
            opts.cache_size = 0;
            opts.ndots = 0;
            opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
            opts.preserve_intermediates = false;
            (conf, opts)
        });
        Ok(Self {
            addresses,
            hickory,
            timeout,
        })
    }

    /// A fresh hickory resolver (no state shared across validations).
    fn resolver(&self) -> Result<TokioResolver, ValidationError> {
        let (conf, opts) = self.hickory.as_ref().ok_or(ValidationError::Dns {
            detail: "no DNS resolver is configured on the validation server".into(),
            transient: true,
        })?;
        Ok(
            TokioResolver::builder_with_config(conf.clone(), TokioConnectionProvider::default())
                .with_options(opts.clone())
                .build(),
        )
    }

    /// The addresses `name` resolves to, in the resolver's order; never empty.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, ValidationError> {
        let addrs: Vec<IpAddr> = match self.addresses {
            Source::System => tokio::net::lookup_host((name, 0u16))
                .await
                .map_err(|e| ValidationError::Dns {
                    detail: format!("looking up A/AAAA for {name}: {e}"),
                    // getaddrinfo does not tell NXDOMAIN from SERVFAIL here.
                    transient: true,
                })?
                .map(|sa| sa.ip())
                .collect(),
            Source::Hickory => {
                let fqdn = fqdn(name)?;
                match self.resolver()?.lookup_ip(fqdn).await {
                    Ok(lookup) => lookup.iter().collect(),
                    Err(e) => match negative(&e) {
                        Some(_) => Vec::new(),
                        None => return Err(dns_failure("A/AAAA", name, &e)),
                    },
                }
            }
        };
        let mut unique = Vec::with_capacity(addrs.len());
        for addr in addrs {
            if !unique.contains(&addr) {
                unique.push(addr);
            }
        }
        if unique.is_empty() {
            return Err(ValidationError::Dns {
                detail: format!("no valid A or AAAA records found for {name}"),
                transient: false,
            });
        }
        Ok(unique)
    }

    /// The TXT records at `name`, each one's character-strings concatenated. A name that
    /// exists without TXT records gives an empty list; NXDOMAIN is a `Dns` error.
    pub(crate) async fn txt(&self, name: &str) -> Result<Vec<Vec<u8>>, ValidationError> {
        let fqdn = fqdn(name)?;
        match self.resolver()?.txt_lookup(fqdn).await {
            Ok(lookup) => Ok(lookup.iter().map(|txt| txt.txt_data().concat()).collect()),
            Err(e) => match negative(&e) {
                Some(Negative::NoData) => Ok(Vec::new()),
                Some(Negative::NoSuchName) => Err(ValidationError::Dns {
                    detail: format!("NXDOMAIN looking up TXT for {name}"),
                    transient: false,
                }),
                None => Err(dns_failure("TXT", name, &e)),
            },
        }
    }

    /// A TCP connection to `host` at `port`: a name is resolved, then its addresses are tried
    /// in order; an attempt that has a fallback gets half the deadline at most.
    pub(crate) async fn connect(
        &self,
        host: &Host<String>,
        port: u16,
    ) -> Result<TcpStream, ValidationError> {
        let addrs = match host {
            Host::Domain(name) => self.addresses(name).await?,
            Host::Ipv4(a) => vec![IpAddr::V4(*a)],
            Host::Ipv6(a) => vec![IpAddr::V6(*a)],
        };
        let mut last = None;
        for (i, ip) in addrs.iter().enumerate() {
            let addr = SocketAddr::new(*ip, port);
            let attempt = TcpStream::connect(addr);
            let result = if i + 1 < addrs.len() {
                match tokio::time::timeout(self.timeout / 2, attempt).await {
                    Ok(r) => r,
                    Err(_) => Err(std::io::ErrorKind::TimedOut.into()),
                }
            } else {
                attempt.await
            };
            match result {
                Ok(stream) => return Ok(stream),
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "validation connect failed");
                    last = Some(ValidationError::Connection {
                        detail: format!("connecting to {addr}: {e}"),
                        transient: true,
                    });
                }
            }
        }
        Err(last.unwrap_or(ValidationError::Connection {
            detail: format!("no address to connect to for {host}"),
            transient: false,
        }))
    }
}

/// `name` as an absolute DNS name, so search domains are never appended.
fn fqdn(name: &str) -> Result<Name, ValidationError> {
    let absolute = if name.ends_with('.') {
        name.to_owned()
    } else {
        format!("{name}.")
    };
    Name::from_ascii(&absolute)
        .map_err(|_| ValidationError::Malformed(format!("{name:?} is not a valid DNS name")))
}

/// Whether hickory's error is an authoritative negative answer (and which), as opposed to
/// a failure to get an answer.
fn negative(e: &ResolveError) -> Option<Negative> {
    match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => match *response_code {
            ResponseCode::NXDomain => Some(Negative::NoSuchName),
            ResponseCode::NoError => Some(Negative::NoData),
            _ => None,
        },
        _ => None,
    }
}

/// A lookup that got no usable answer (SERVFAIL, REFUSED, timeout, network): transient.
fn dns_failure(rtype: &str, name: &str, e: &ResolveError) -> ValidationError {
    tracing::debug!(%name, rtype, error = %e, "validation DNS lookup failed");
    let why = match e.proto().map(|p| p.kind()) {
        Some(ProtoErrorKind::NoRecordsFound { response_code, .. }) => {
            format!("the server answered {response_code}")
        }
        Some(ProtoErrorKind::Timeout) => "the query timed out".to_owned(),
        _ => "no answer from the DNS servers".to_owned(),
    };
    ValidationError::Dns {
        detail: format!("looking up {rtype} for {name}: {why}"),
        transient: true,
    }
}
