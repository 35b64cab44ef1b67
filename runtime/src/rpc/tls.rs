//! Mutual TLS for upshift's RPC: both sides present certificates from one
//! certificate authority, and a server knows who calls it from the
//! caller's certificate.
//!
//! TLS 1.3 only, through rustls with the `ring` provider. An identity is a
//! URI in the certificate's subject alternative names: `upshift://node/ID`
//! for a node (its id in the cluster), `upshift://operator/NAME` for
//! someone who may publish and steer rollouts, `upshift://reader/NAME` for
//! someone who may only look, `upshift://coordinator/NAME` for a
//! coordinator. [`caller`] tells a service method who made the call.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};

/// What a certificate's identity allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// A node of a service: it registers, reports and takes upgrade slots
    /// as the node id in its certificate, and nothing else.
    Node,
    /// An operator: publishes upgrades and steers rollouts.
    Operator,
    /// A reader: sees status, changes nothing.
    Reader,
    /// A coordinator, when it calls a node.
    Coordinator,
}

impl Role {
    fn from_path(word: &str) -> Option<Role> {
        Some(match word {
            "node" => Role::Node,
            "operator" => Role::Operator,
            "reader" => Role::Reader,
            "coordinator" => Role::Coordinator,
            _ => return None,
        })
    }

    /// The word in the identity URI: `node`, `operator`, `reader`, `coordinator`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Node => "node",
            Role::Operator => "operator",
            Role::Reader => "reader",
            Role::Coordinator => "coordinator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a certificate says its holder is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    /// What it may do.
    pub role: Role,
    /// Its name: a node's id, an operator's or reader's name.
    pub name: String,
}

/// The URI scheme of identities.
pub const IDENTITY_SCHEME: &str = "upshift://";

impl Identity {
    /// An identity.
    pub fn new(role: Role, name: impl Into<String>) -> Self {
        Identity {
            role,
            name: name.into(),
        }
    }

    /// Reads `upshift://ROLE/NAME`; `None` for anything else (another
    /// scheme, an unknown role, an empty name or one with a `/`).
    pub fn from_uri(uri: &str) -> Option<Identity> {
        let rest = uri.strip_prefix(IDENTITY_SCHEME)?;
        let (role, name) = rest.split_once('/')?;
        let role = Role::from_path(role)?;
        let valid = !name.is_empty() && !name.contains('/') && name.len() <= 255;
        valid.then(|| Identity::new(role, name))
    }

    /// `upshift://ROLE/NAME`.
    pub fn uri(&self) -> String {
        format!("{IDENTITY_SCHEME}{}/{}", self.role, self.name)
    }

    /// The one upshift identity among a certificate's URI names; `None`
    /// when it has none, or more than one (which it would be is not
    /// for the holder to choose).
    pub fn of_certificate(der: &[u8]) -> Option<Identity> {
        let mut found = uri_names(der)
            .into_iter()
            .filter_map(|u| Identity::from_uri(&u));
        let first = found.next()?;
        found.next().is_none().then_some(first)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.role, self.name)
    }
}

tokio::task_local! {
    static CALLER: Option<Arc<Identity>>;
}

/// Who made the call being served, from the client certificate of its
/// connection; `None` on a connection without TLS, or outside a call.
pub fn caller() -> Option<Arc<Identity>> {
    CALLER.try_with(Clone::clone).ok().flatten()
}

/// Runs `call` as a call made by `identity` ([`caller`] returns it).
pub(crate) async fn as_caller<F: Future>(identity: Option<Arc<Identity>>, call: F) -> F::Output {
    CALLER.scope(identity, call).await
}

/// Why TLS settings could not be made.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What the system said.
        source: std::io::Error,
    },
    /// A PEM text held no certificate, or no private key.
    #[error("{what} holds no {expected} in PEM")]
    Pem {
        /// The file or text.
        what: String,
        /// A certificate or a private key.
        expected: &'static str,
    },
    /// rustls refused the settings (a key that does not match its
    /// certificate, a CA certificate it cannot use).
    #[error("TLS settings: {0}")]
    Rustls(String),
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn certificates(pem: &[u8], what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Pem {
            what: what.into(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

fn private_key(pem: &[u8], what: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|_| TlsError::Pem {
        what: what.into(),
        expected: "private key",
    })
}

fn roots(ca_pem: &[u8], what: &str) -> Result<Arc<rustls::RootCertStore>, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(ca_pem, what)? {
        roots
            .add(cert)
            .map_err(|e| TlsError::Rustls(format!("the CA certificate in {what}: {e}")))?;
    }
    Ok(Arc::new(roots))
}

/// A client's settings for a server other than upshift's (etcd): its CA
/// and, if it asks for one, this client's certificate and key. TLS 1.2 is
/// allowed beside 1.3, as such servers may be configured.
pub(crate) fn client_config(
    ca_pem: &[u8],
    ca_what: &str,
    client: Option<(&[u8], &[u8], &str)>,
) -> Result<rustls::ClientConfig, TlsError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(rustls_error)?
        .with_root_certificates(roots(ca_pem, ca_what)?);
    match client {
        Some((cert, key, what)) => builder
            .with_client_auth_cert(certificates(cert, what)?, private_key(key, what)?)
            .map_err(rustls_error),
        None => Ok(builder.with_no_client_auth()),
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn rustls_error(e: impl fmt::Display) -> TlsError {
    TlsError::Rustls(e.to_string())
}

/// The files of one identity in a directory of certificates, as
/// `upshift keys tls` writes them: `ca.pem`, `NAME.pem`, `NAME.key`.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate authority every peer's certificate is signed by.
    pub ca: std::path::PathBuf,
    /// This side's certificate chain.
    pub cert: std::path::PathBuf,
    /// This side's private key.
    pub key: std::path::PathBuf,
}

impl TlsFiles {
    /// `DIR/ca.pem`, `DIR/NAME.pem`, `DIR/NAME.key`.
    pub fn in_dir(dir: &Path, name: &str) -> Self {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

/// A server's TLS: its certificate, and the CA its callers' certificates
/// must be signed by (a caller without one is refused in the handshake).
#[derive(Clone)]
pub struct ServerTls {
    pub(crate) acceptor: tokio_rustls::TlsAcceptor,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// From PEM texts: the certificate chain, its private key, and the CA
    /// of the callers.
    pub fn from_pem(cert: &[u8], key: &[u8], client_ca: &[u8]) -> Result<Self, TlsError> {
        let provider = provider();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            roots(client_ca, "the CA")?,
            provider.clone(),
        )
        .build()
        .map_err(rustls_error)?;
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_error)?
            .with_client_cert_verifier(verifier)
            .with_single_cert(
                certificates(cert, "the certificate")?,
                private_key(key, "the key")?,
            )
            .map_err(rustls_error)?;
        Ok(ServerTls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// From files ([`TlsFiles`]).
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        Self::from_pem(&read(&files.cert)?, &read(&files.key)?, &read(&files.ca)?)
    }

    /// The handshake on an accepted stream; the caller's identity from its
    /// certificate (`None` if it names no upshift identity).
    pub(crate) async fn accept<IO>(
        &self,
        io: IO,
    ) -> std::io::Result<(tokio_rustls::server::TlsStream<IO>, Option<Arc<Identity>>)>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let stream = self.acceptor.accept(io).await?;
        let identity = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|cert| Identity::of_certificate(cert))
            .map(Arc::new);
        Ok((stream, identity))
    }
}

/// A client's TLS: the CA the server's certificate must be signed by, and
/// the client's own certificate, which says who it is.
#[derive(Clone)]
pub struct ClientTls {
    connector: tokio_rustls::TlsConnector,
    server_name: Option<String>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("server_name", &self.server_name)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// From PEM texts: the servers' CA, this client's certificate chain and key.
    pub fn from_pem(server_ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Self, TlsError> {
        let config = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(rustls_error)?
            .with_root_certificates(roots(server_ca, "the CA")?)
            .with_client_auth_cert(
                certificates(cert, "the certificate")?,
                private_key(key, "the key")?,
            )
            .map_err(rustls_error)?;
        Ok(ClientTls {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
            server_name: None,
        })
    }

    /// From files ([`TlsFiles`]).
    pub fn from_files(files: &TlsFiles) -> Result<Self, TlsError> {
        Self::from_pem(&read(&files.ca)?, &read(&files.cert)?, &read(&files.key)?)
    }

    /// The name the server's certificate must hold; by default the IP
    /// address connected to.
    pub fn with_server_name(mut self, name: impl Into<String>) -> Self {
        self.server_name = Some(name.into());
        self
    }

    /// The handshake with the server at `peer` over `io`.
    pub(crate) async fn connect<IO>(
        &self,
        peer: std::net::SocketAddr,
        io: IO,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<IO>>
    where
        IO: AsyncRead + AsyncWrite + Unpin,
    {
        let name = match &self.server_name {
            Some(name) => rustls::pki_types::ServerName::try_from(name.clone()).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("server name {name:?}: {e}"),
                )
            })?,
            None => rustls::pki_types::ServerName::IpAddress(peer.ip().into()),
        };
        self.connector.connect(name, io).await
    }
}

/// The URI names (`uniformResourceIdentifier`) in the subject alternative
/// names of a DER certificate. Reads only as deep as it must, checks every
/// length against what is there, and gives up (an empty list) on anything
/// it does not expect: the certificate has been verified by then, but
/// this must not panic on any bytes.
pub(crate) fn uri_names(der: &[u8]) -> Vec<String> {
    uri_names_of(der).unwrap_or_default()
}

const SEQUENCE: u8 = 0x30;
const EXTENSIONS: u8 = 0xa3;
const OID: u8 = 0x06;
const BOOLEAN: u8 = 0x01;
const OCTET_STRING: u8 = 0x04;
const URI_NAME: u8 = 0x86;
/// 2.5.29.17, subjectAltName.
const SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

fn uri_names_of(der: &[u8]) -> Option<Vec<String>> {
    let (cert, _) = expect(der, SEQUENCE)?;
    let (mut tbs, _) = expect(cert, SEQUENCE)?;
    // The extensions are the last field of the to-be-signed certificate.
    let extensions = loop {
        let (tag, value, rest) = tlv(tbs)?;
        if tag == EXTENSIONS {
            break value;
        }
        tbs = rest;
    };
    let (mut list, _) = expect(extensions, SEQUENCE)?;
    let mut names = Vec::new();
    while !list.is_empty() {
        let (extension, rest) = expect(list, SEQUENCE)?;
        list = rest;
        let (oid, mut fields) = expect(extension, OID)?;
        if oid != SUBJECT_ALT_NAME {
            continue;
        }
        if let Some((_, after)) = expect(fields, BOOLEAN) {
            fields = after;
        }
        let (value, _) = expect(fields, OCTET_STRING)?;
        let (mut general, _) = expect(value, SEQUENCE)?;
        while !general.is_empty() {
            let (tag, name, rest) = tlv(general)?;
            general = rest;
            if tag == URI_NAME {
                names.push(std::str::from_utf8(name).ok()?.to_string());
            }
        }
    }
    Some(names)
}

/// The value of a TLV of tag `tag` at the start of `input`, and what follows.
fn expect(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (found, value, rest) = tlv(input)?;
    (found == tag).then_some((value, rest))
}

/// One DER tag-length-value: (tag, value, rest). Single-byte tags and
/// definite lengths of up to four bytes, as certificates use.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, after) = rest.split_at(n);
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    if rest.len() < len {
        return None;
    }
    let (value, rest) = rest.split_at(len);
    Some((tag, value, rest))
}

/// Serves `io` after the TLS handshake: what the accept loop runs for each
/// connection of a TLS listener, so a slow handshake holds only its own
/// task (and is bounded by `timeout`).
pub(crate) async fn handshake<IO>(
    tls: &ServerTls,
    io: IO,
    timeout: std::time::Duration,
) -> Result<(tokio_rustls::server::TlsStream<IO>, Option<Arc<Identity>>), String>
where
    IO: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, tls.accept(io)).await {
        Ok(Ok(accepted)) => Ok(accepted),
        Ok(Err(e)) => Err(format!("TLS handshake failed: {e}")),
        Err(_) => Err(format!("no TLS handshake within {timeout:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_read_from_their_uris() {
        assert_eq!(
            Identity::from_uri("upshift://node/n1"),
            Some(Identity::new(Role::Node, "n1"))
        );
        assert_eq!(
            Identity::from_uri("upshift://operator/alice").map(|i| i.uri()),
            Some("upshift://operator/alice".into())
        );
        for bad in [
            "https://node/n1",
            "upshift://node/",
            "upshift://node",
            "upshift://admin/root",
            "upshift://node/a/b",
        ] {
            assert_eq!(Identity::from_uri(bad), None, "{bad}");
        }
    }

    #[test]
    fn lengths_past_the_input_read_as_nothing() {
        assert_eq!(tlv(&[0x30, 0x05, 1, 2]), None);
        assert_eq!(tlv(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(tlv(&[0x30, 0x80]), None);
        assert_eq!(tlv(&[0x1f, 0x00]), None);
        assert_eq!(
            tlv(&[0x30, 0x02, 1, 2, 9]),
            Some((0x30, &[1u8, 2][..], &[9u8][..]))
        );
        assert_eq!(uri_names(&[]), Vec::<String>::new());
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_without_panicking(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let _ = uri_names(&bytes);
            let _ = Identity::of_certificate(&bytes);
        }
    }
}

/// A certificate authority for development and tests, and the certificates
/// it issues (feature `dev-certs`; `upshift keys tls` uses it). Its key is
/// a file beside its certificate: production certificates come from the
/// operator's own PKI.
#[cfg(feature = "dev-certs")]
pub mod dev {
    use std::path::Path;

    use rcgen::{
        BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer,
        KeyPair, KeyUsagePurpose, SanType,
    };

    use super::{Identity, TlsError};

    /// A development CA: `ca.pem` and `ca.key` in a directory.
    pub struct DevCa {
        issuer: Issuer<'static, KeyPair>,
    }

    impl std::fmt::Debug for DevCa {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("DevCa")
        }
    }

    fn failed(e: impl std::fmt::Display) -> TlsError {
        TlsError::Rustls(format!("making a certificate: {e}"))
    }

    fn write(path: &Path, text: &str, secret: bool) -> Result<(), TlsError> {
        let io = |source| TlsError::Read {
            path: path.display().to_string(),
            source,
        };
        std::fs::write(path, text).map_err(io)?;
        #[cfg(unix)]
        if secret {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io)?;
        }
        let _ = secret;
        Ok(())
    }

    /// The CA's parameters: the same for the same key, so a CA read back
    /// from its key file issues certificates its certificate verifies.
    fn ca_params() -> CertificateParams {
        let mut params = CertificateParams::default();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "upshift development CA");
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        params
    }

    impl DevCa {
        /// The CA in `dir` (`ca.pem`, `ca.key`), made there first if it is not.
        pub fn open_or_create(dir: &Path) -> Result<Self, TlsError> {
            std::fs::create_dir_all(dir).map_err(|source| TlsError::Read {
                path: dir.display().to_string(),
                source,
            })?;
            let key_path = dir.join("ca.key");
            if key_path.exists() {
                let pem = std::fs::read_to_string(&key_path).map_err(|source| TlsError::Read {
                    path: key_path.display().to_string(),
                    source,
                })?;
                let key = KeyPair::from_pem(&pem).map_err(failed)?;
                return Ok(DevCa {
                    issuer: Issuer::new(ca_params(), key),
                });
            }
            let key = KeyPair::generate().map_err(failed)?;
            let cert = ca_params().self_signed(&key).map_err(failed)?;
            write(&key_path, &key.serialize_pem(), true)?;
            write(&dir.join("ca.pem"), &cert.pem(), false)?;
            Ok(DevCa {
                issuer: Issuer::new(ca_params(), key),
            })
        }

        /// Issues `NAME.pem` and `NAME.key` in `dir` for `identity` (as a
        /// URI name) and `hosts` (DNS names or IP addresses the holder
        /// serves on), usable by a client and by a server.
        pub fn issue(
            &self,
            dir: &Path,
            name: &str,
            identity: &Identity,
            hosts: &[String],
        ) -> Result<(), TlsError> {
            let mut params = CertificateParams::new(hosts.to_vec()).map_err(failed)?;
            params
                .distinguished_name
                .push(DnType::CommonName, identity.uri());
            let uri = identity.uri().try_into().map_err(failed)?;
            params.subject_alt_names.push(SanType::URI(uri));
            params.use_authority_key_identifier_extension = true;
            params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
            params.extended_key_usages = vec![
                ExtendedKeyUsagePurpose::ClientAuth,
                ExtendedKeyUsagePurpose::ServerAuth,
            ];
            let key = KeyPair::generate().map_err(failed)?;
            let cert = params.signed_by(&key, &self.issuer).map_err(failed)?;
            write(&dir.join(format!("{name}.key")), &key.serialize_pem(), true)?;
            write(&dir.join(format!("{name}.pem")), &cert.pem(), false)
        }
    }
}
