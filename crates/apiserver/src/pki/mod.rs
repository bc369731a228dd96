//! The cluster PKI: a CA created on first start, the API server's serving certificate and the
//! admin client certificate, all kept under `<data-dir>/tls/` and reused on later starts.
//!
//! Keys are ECDSA P-256 in PKCS#8 PEM, mode 0600. The CA is never regenerated once it exists;
//! leaf certificates are reissued (by the same CA) when they are missing, unreadable, close to
//! expiry, signed by another CA, or no longer match what is asked of them (for example a new
//! `--tls-san`).

mod der;

use std::{
    fmt, fs, io,
    net::{IpAddr, Ipv4Addr},
    path::{Path, PathBuf},
    str::FromStr,
};

use base64::Engine;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use x509_parser::{certificate::X509Certificate, extensions::GeneralName, prelude::FromDer};

use crate::fsutil;

/// The CA certificate's file name inside the TLS directory.
pub const CA_CERT_FILE: &str = "ca.crt";
/// The CA key's file name inside the TLS directory.
pub const CA_KEY_FILE: &str = "ca.key";
/// The API server's serving certificate.
pub const SERVING_CERT_FILE: &str = "apiserver.crt";
/// The API server's serving key.
pub const SERVING_KEY_FILE: &str = "apiserver.key";
/// The admin client certificate (`CN=system:admin`, `O=system:masters`).
pub const ADMIN_CERT_FILE: &str = "admin.crt";
/// The admin client key.
pub const ADMIN_KEY_FILE: &str = "admin.key";

/// The user name of the admin client certificate.
pub const ADMIN_USER: &str = "system:admin";
/// The group that may do everything (upstream's `system:masters`).
pub const ADMIN_GROUP: &str = "system:masters";
/// The first address of the service CIDR, where the `kubernetes` Service points.
pub const KUBERNETES_SERVICE_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 43, 0, 1));

/// How long a new CA is valid.
const CA_VALIDITY_DAYS: i64 = 3650;
/// How long a new leaf certificate is valid.
const LEAF_VALIDITY_DAYS: i64 = 365;
/// A leaf certificate with less than this left is reissued at start-up.
const RENEW_BEFORE_DAYS: i64 = 90;
/// Certificates start being valid a little in the past, to tolerate clock skew between nodes.
const BACKDATE_MINUTES: i64 = 60;

/// What can go wrong with the PKI. Every variant names the file at fault where there is one.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file exists but cannot be read.
    #[error("cannot read {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: io::Error,
    },
    /// A file or directory cannot be written.
    #[error("cannot write {}", path.display())]
    Write {
        /// The file or directory.
        path: PathBuf,
        /// The IO error.
        #[source]
        source: io::Error,
    },
    /// A file holds something other than what it should.
    #[error("{}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Half of the CA is present: refusing to create a new CA over it.
    #[error(
        "{} exists but {} is missing: restore it, or remove {} to create a new cluster CA",
        present.display(), missing.display(), present.display()
    )]
    IncompleteCa {
        /// The CA file that exists.
        present: PathBuf,
        /// The CA file that is missing.
        missing: PathBuf,
    },
    /// A certificate or key could not be generated.
    #[error("cannot generate {what}")]
    Generate {
        /// What was being generated.
        what: String,
        /// The underlying error.
        #[source]
        source: rcgen::Error,
    },
    /// The DER rewrite that sets several organisations failed.
    #[error("cannot set the subject of {what}")]
    Subject {
        /// What was being generated.
        what: String,
        /// The underlying error.
        #[source]
        source: der::Error,
    },
    /// A subject alternative name is neither an IP address nor a DNS name.
    #[error("invalid subject alternative name {value:?}: {reason}")]
    InvalidSan {
        /// The rejected value.
        value: String,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// The system random number generator failed.
    #[error("no randomness available")]
    Random,
}

/// A subject alternative name: a DNS name or an IP address.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum San {
    /// A DNS name (lower case, may start with `*.`).
    Dns(String),
    /// An IP address.
    Ip(IpAddr),
}

impl FromStr for San {
    type Err = Error;

    /// Parses an IP address, or else a DNS name (letters, digits, `-` and `.`, optionally a
    /// leading `*.` wildcard).
    fn from_str(s: &str) -> Result<Self, Error> {
        let s = s.trim();
        if let Ok(ip) = s.parse::<IpAddr>() {
            return Ok(Self::Ip(ip));
        }
        let invalid = |reason| Error::InvalidSan {
            value: s.to_string(),
            reason,
        };
        let name = s.to_ascii_lowercase();
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        if name.len() > 253 {
            return Err(invalid("longer than 253 characters"));
        }
        let labels = name.strip_prefix("*.").unwrap_or(&name);
        for label in labels.split('.') {
            if label.is_empty() || label.len() > 63 {
                return Err(invalid(
                    "each dot-separated label must have 1 to 63 characters",
                ));
            }
            if !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(invalid(
                    "only letters, digits, '-' and '.' are allowed in a DNS name",
                ));
            }
            if label.starts_with('-') || label.ends_with('-') {
                return Err(invalid("a label cannot start or end with '-'"));
            }
        }
        Ok(Self::Dns(name))
    }
}

impl fmt::Display for San {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Dns(name) => f.write_str(name),
            Self::Ip(ip) => ip.fmt(f),
        }
    }
}

/// What a leaf certificate is for (its extended key usage).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Usage {
    /// A TLS server (serverAuth).
    Server,
    /// A TLS client (clientAuth): the common name is the user, the organisations its groups.
    Client,
}

/// What to put into a leaf certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeafSpec {
    /// The subject's common name (for a client: the user name).
    pub common_name: String,
    /// The subject's organisations, one `O=` attribute each (for a client: its groups).
    pub organizations: Vec<String>,
    /// Subject alternative names (for a server: every name clients use to reach it).
    pub sans: Vec<San>,
    /// Server or client.
    pub usage: Usage,
}

impl LeafSpec {
    /// A client certificate for `user` in `groups`.
    pub fn client(user: impl Into<String>, groups: &[&str]) -> Self {
        Self {
            common_name: user.into(),
            organizations: groups.iter().map(|g| g.to_string()).collect(),
            sans: Vec::new(),
            usage: Usage::Client,
        }
    }

    /// A serving certificate for these names.
    pub fn server(common_name: impl Into<String>, sans: Vec<San>) -> Self {
        Self {
            common_name: common_name.into(),
            organizations: Vec::new(),
            sans,
            usage: Usage::Server,
        }
    }
}

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct Issued {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The PKCS#8 private key, PEM. Secret: never log it.
    pub key_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

/// The cluster CA: signs serving and client certificates.
pub struct ClusterCa {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClusterCa")
            .field("fingerprint", &self.fingerprint())
            .finish_non_exhaustive()
    }
}

impl ClusterCa {
    /// Creates a new self-signed CA (in memory only).
    pub fn generate() -> Result<Self, Error> {
        let generate = |source| Error::Generate {
            what: "the cluster CA".into(),
            source,
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(
            DnType::CommonName,
            format!("tug-ca@{}", now.unix_timestamp()),
        );
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
        ];
        params.not_before = now - time::Duration::minutes(BACKDATE_MINUTES);
        params.not_after = now + time::Duration::days(CA_VALIDITY_DAYS);
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(generate)?;
        let cert_der = cert.der().to_vec();
        Ok(Self {
            cert_pem: pem_encode("CERTIFICATE", &cert_der),
            cert_der,
            issuer: Issuer::new(params, key),
        })
    }

    /// Rebuilds a CA from its PEM certificate and key; `cert_path` and `key_path` only name the
    /// files in errors.
    pub fn from_pem(
        cert_pem: &str,
        key_pem: &str,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<Self, Error> {
        let invalid = |path: &Path, reason: String| Error::Invalid {
            path: path.to_path_buf(),
            reason,
        };
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| invalid(cert_path, format!("not a PEM certificate: {e}")))?;
        let (_, x509) = X509Certificate::from_der(&cert_der)
            .map_err(|e| invalid(cert_path, format!("not an X.509 certificate: {e}")))?;
        if !x509.is_ca() {
            return Err(invalid(cert_path, "not a CA certificate".into()));
        }
        let key = KeyPair::from_pem(key_pem)
            .map_err(|e| invalid(key_path, format!("not a usable PEM private key: {e}")))?;
        if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
            return Err(invalid(
                key_path,
                format!("does not match the certificate in {}", cert_path.display()),
            ));
        }
        let issuer = Issuer::from_ca_cert_der(&cert_der, key)
            .map_err(|e| invalid(cert_path, format!("cannot be used as an issuer: {e}")))?;
        Ok(Self {
            cert_pem: cert_pem.to_string(),
            cert_der: cert_der.to_vec(),
            issuer,
        })
    }

    /// Loads the CA from `tls_dir`, or creates and saves a new one if neither of its files
    /// exists. Returns the CA and whether it was created now.
    pub fn load_or_create(tls_dir: &Path) -> Result<(Self, bool), Error> {
        let cert_path = tls_dir.join(CA_CERT_FILE);
        let key_path = tls_dir.join(CA_KEY_FILE);
        let cert = read_optional(&cert_path)?;
        let key = read_optional(&key_path)?;
        match (cert, key) {
            (Some(cert), Some(key)) => {
                let ca = Self::from_pem(&cert, &key, &cert_path, &key_path)?;
                Ok((ca, false))
            }
            (None, None) => {
                let ca = Self::generate()?;
                write_file(&key_path, ca.issuer.key().serialize_pem().as_bytes(), true)?;
                write_file(&cert_path, ca.cert_pem.as_bytes(), false)?;
                Ok((ca, true))
            }
            (Some(_), None) => Err(Error::IncompleteCa {
                present: cert_path,
                missing: key_path,
            }),
            (None, Some(_)) => Err(Error::IncompleteCa {
                present: key_path,
                missing: cert_path,
            }),
        }
    }

    /// Issues a new leaf certificate with a fresh key.
    pub fn issue(&self, spec: &LeafSpec) -> Result<Issued, Error> {
        let what = || format!("a certificate for {:?}", spec.common_name);
        let generate = |source| Error::Generate {
            what: what(),
            source,
        };
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).map_err(generate)?;
        let now = time::OffsetDateTime::now_utc();
        let mut params = CertificateParams::default();
        // rcgen writes one value per attribute type; the real subject (with every `O=`) is
        // swapped in below.
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, spec.common_name.clone());
        params.distinguished_name = dn;
        params.subject_alt_names = spec
            .sans
            .iter()
            .map(|san| match san {
                San::Dns(name) => name
                    .clone()
                    .try_into()
                    .map(SanType::DnsName)
                    .map_err(generate),
                San::Ip(ip) => Ok(SanType::IpAddress(*ip)),
            })
            .collect::<Result<_, _>>()?;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![match spec.usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        params.not_before = now - time::Duration::minutes(BACKDATE_MINUTES);
        params.not_after = now + time::Duration::days(LEAF_VALIDITY_DAYS);
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        let cert = params.signed_by(&key, &self.issuer).map_err(generate)?;
        let subject = der::encode_name(&spec.common_name, &spec.organizations);
        let cert_der =
            der::replace_subject(cert.der(), &subject, self.issuer.key()).map_err(|source| {
                Error::Subject {
                    what: what(),
                    source,
                }
            })?;
        Ok(Issued {
            cert_pem: pem_encode("CERTIFICATE", &cert_der),
            key_pem: key.serialize_pem(),
            cert_der,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// `sha256:<hex>` of the CA certificate's DER: identifies the cluster CA in logs.
    pub fn fingerprint(&self) -> String {
        fingerprint(&self.cert_der)
    }

    /// Checks that `cert` was signed by this CA.
    fn signed(&self, cert: &X509Certificate<'_>) -> bool {
        X509Certificate::from_der(&self.cert_der)
            .map(|(_, ca)| cert.verify_signature(Some(ca.public_key())).is_ok())
            .unwrap_or(false)
    }

    /// Loads the leaf at `cert_path`/`key_path` if it is still good for `spec`; otherwise
    /// issues a new one and saves it. Returns the leaf and, if it was reissued, why.
    pub fn load_or_issue(
        &self,
        spec: &LeafSpec,
        cert_path: &Path,
        key_path: &Path,
    ) -> Result<(Issued, Option<String>), Error> {
        let cert = read_optional(cert_path)?;
        let key = read_optional(key_path)?;
        let why = match (cert, key) {
            (Some(cert), Some(key)) => match self.check_leaf(spec, &cert, &key) {
                Ok(issued) => return Ok((issued, None)),
                Err(why) => why,
            },
            _ => "missing".to_string(),
        };
        let issued = self.issue(spec)?;
        write_file(key_path, issued.key_pem.as_bytes(), true)?;
        write_file(cert_path, issued.cert_pem.as_bytes(), false)?;
        Ok((issued, Some(why)))
    }

    /// Whether an existing leaf can be kept: signed by this CA, matching its key, far from
    /// expiry, with the asked-for subject and at least the asked-for names.
    fn check_leaf(&self, spec: &LeafSpec, cert_pem: &str, key_pem: &str) -> Result<Issued, String> {
        let cert_der = CertificateDer::from_pem_slice(cert_pem.as_bytes())
            .map_err(|e| format!("not a PEM certificate ({e})"))?;
        let (_, x509) = X509Certificate::from_der(&cert_der)
            .map_err(|e| format!("not an X.509 certificate ({e})"))?;
        let key = KeyPair::from_pem(key_pem).map_err(|e| format!("unusable key ({e})"))?;
        if key.public_key_raw() != x509.public_key().subject_public_key.data.as_ref() {
            return Err("key does not match the certificate".into());
        }
        if !self.signed(&x509) {
            return Err("not signed by the cluster CA".into());
        }
        let left = x509.validity().not_after.timestamp()
            - time::OffsetDateTime::now_utc().unix_timestamp();
        if left < RENEW_BEFORE_DAYS * 24 * 3600 {
            return Err("expires soon".into());
        }
        let subject = x509.subject();
        let cn: Vec<_> = subject
            .iter_common_name()
            .filter_map(|a| a.as_str().ok())
            .collect();
        let orgs: Vec<_> = subject
            .iter_organization()
            .filter_map(|a| a.as_str().ok())
            .collect();
        if cn != [spec.common_name.as_str()] || orgs != spec.organizations {
            return Err("subject changed".into());
        }
        let have = sans_of(&x509);
        if let Some(missing) = spec.sans.iter().find(|san| !have.contains(san)) {
            return Err(format!("does not cover {missing}"));
        }
        Ok(Issued {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            cert_der: cert_der.to_vec(),
        })
    }
}

/// The subject alternative names of a parsed certificate.
fn sans_of(x509: &X509Certificate<'_>) -> Vec<San> {
    let Ok(Some(ext)) = x509.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(San::Dns(dns.to_ascii_lowercase())),
            GeneralName::IPAddress(bytes) => match bytes.len() {
                4 => <[u8; 4]>::try_from(*bytes).ok().map(|b| San::Ip(b.into())),
                16 => <[u8; 16]>::try_from(*bytes).ok().map(|b| San::Ip(b.into())),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// Everything the API server needs from the PKI, loaded or created under one directory.
#[derive(Debug)]
pub struct ClusterPki {
    /// The directory holding the files (`<data-dir>/tls`).
    pub dir: PathBuf,
    /// The cluster CA.
    pub ca: ClusterCa,
    /// Whether the CA was created by this start.
    pub ca_created: bool,
    /// The API server's serving certificate.
    pub serving: Issued,
    /// The admin client certificate.
    pub admin: Issued,
    /// Files reissued by this start, with the reason.
    pub reissued: Vec<(&'static str, String)>,
}

impl ClusterPki {
    /// Loads the PKI from `dir`, creating what is missing: the CA (only if neither of its files
    /// exists), a serving certificate covering `serving_sans`, and the admin certificate.
    pub fn load_or_create(dir: &Path, serving_sans: &[San]) -> Result<Self, Error> {
        fsutil::create_private_dir(dir).map_err(|source| Error::Write {
            path: dir.to_path_buf(),
            source,
        })?;
        let (ca, ca_created) = ClusterCa::load_or_create(dir)?;
        let mut reissued = Vec::new();
        let serving_spec = LeafSpec::server("kube-apiserver", serving_sans.to_vec());
        let (serving, why) = ca.load_or_issue(
            &serving_spec,
            &dir.join(SERVING_CERT_FILE),
            &dir.join(SERVING_KEY_FILE),
        )?;
        reissued.extend(why.map(|why| (SERVING_CERT_FILE, why)));
        let admin_spec = LeafSpec::client(ADMIN_USER, &[ADMIN_GROUP]);
        let (admin, why) = ca.load_or_issue(
            &admin_spec,
            &dir.join(ADMIN_CERT_FILE),
            &dir.join(ADMIN_KEY_FILE),
        )?;
        reissued.extend(why.map(|why| (ADMIN_CERT_FILE, why)));
        Ok(Self {
            dir: dir.to_path_buf(),
            ca,
            ca_created,
            serving,
            admin,
            reissued,
        })
    }
}

/// The names the serving certificate must cover: the in-cluster names of the `kubernetes`
/// Service, `localhost`, loopback, the Service IP, the host name, the bind address if it is a
/// specific one, and the extra names given with `--tls-san`. Sorted, without duplicates.
pub fn serving_sans(hostname: Option<&str>, bind_address: IpAddr, extra: &[San]) -> Vec<San> {
    let mut sans: Vec<San> = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ]
    .into_iter()
    .map(|name| San::Dns(name.to_string()))
    .collect();
    sans.push(San::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    sans.push(San::Ip(KUBERNETES_SERVICE_IP));
    if let Some(host) = hostname.and_then(|h| h.parse::<San>().ok()) {
        sans.push(host);
    }
    if !bind_address.is_unspecified() {
        sans.push(San::Ip(bind_address));
    }
    sans.extend(extra.iter().cloned());
    sans.sort();
    sans.dedup();
    sans
}

/// The machine's host name, if it has a usable one.
pub fn hostname() -> Option<String> {
    let name = fs::read_to_string("/proc/sys/kernel/hostname").ok()?;
    let name = name.trim().to_ascii_lowercase();
    (!name.is_empty()).then_some(name)
}

/// `sha256:<hex>` of some DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, der);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// PEM-encodes DER bytes under `label`, 64 characters a line.
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A random positive serial number of 16 bytes.
fn random_serial() -> Result<SerialNumber, Error> {
    let mut bytes = [0u8; 16];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
        .map_err(|_| Error::Random)?;
    bytes[0] = (bytes[0] & 0x7f) | 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

/// Reads a file as UTF-8, `None` if it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, Error> {
    match fs::read(path) {
        Ok(bytes) => String::from_utf8(bytes)
            .map(Some)
            .map_err(|_| Error::Invalid {
                path: path.to_path_buf(),
                reason: "not a text (PEM) file".into(),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

fn write_file(path: &Path, contents: &[u8], secret: bool) -> Result<(), Error> {
    let mode = if secret {
        fsutil::SECRET_MODE
    } else {
        fsutil::PUBLIC_MODE
    };
    fsutil::write_atomic(path, contents, mode).map_err(|source| Error::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests;
