//! TLS to PostgreSQL, with the URL parameters libpq users already write: `sslmode`,
//! `sslrootcert`, `sslcert` and `sslkey`.
//!
//! The stack is rustls, through `tokio-postgres-rustls` (the field's adapter for
//! tokio-postgres, which also gives SCRAM's channel binding), with the `ring` provider. Not
//! `postgres-native-tls`: waotp already carries rustls with ring and the webpki roots for its
//! outbound HTTPS (reqwest's `rustls-tls-webpki-roots`), so this adds no second TLS stack and
//! no OpenSSL to link against and keep patched on every host.
//!
//! What is checked, as libpq does:
//! - `disable`: no TLS. `prefer` (the default): TLS when the server offers it, the certificate
//!   unchecked; plain when it does not.
//! - `require`: TLS or no connection; the certificate is not checked (the handshake's
//!   signatures are) — unless `sslrootcert` is given, when it is checked as by `verify-ca`.
//! - `verify-ca`: the certificate must chain to a trusted CA; any host name.
//! - `verify-full`: it must chain to a trusted CA and name the host connected to.
//!
//! The trusted CAs: the PEM file `sslrootcert` names; `sslrootcert=system`, the platform's
//! store (which, as in libpq, means `verify-full`); without `sslrootcert`, the webpki roots
//! built into waotp (Mozilla's list). libpq would read `~/.postgresql/root.crt` instead; waotp
//! reads no file it was not given, and neither `~/.postgresql/postgresql.crt` and `.key`:
//! a client certificate is `sslcert` and `sslkey` together.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::{Result, StoreError};

/// The URL's `sslmode`, with libpq's names and meaning (see the module's note).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::Open(format!(
                    "sslmode must be disable, prefer, require, verify-ca or verify-full, not {other:?}"
                )))
            }
        })
    }

    /// libpq's name for it.
    pub fn name(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }

    /// What the driver is told: it knows whether TLS is wanted, not how it is checked.
    pub(crate) fn driver(self) -> tokio_postgres::config::SslMode {
        match self {
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => tokio_postgres::config::SslMode::Require,
        }
    }
}

/// The CAs a server's certificate is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Roots {
    /// No `sslrootcert`: the webpki roots built into waotp (Mozilla's list).
    Builtin,
    /// `sslrootcert=system`: the platform's trusted CAs.
    System,
    /// `sslrootcert=FILE`: the CA certificates in a PEM file.
    File(PathBuf),
}

/// A client certificate: `sslcert` and `sslkey`, PEM files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The URL's TLS settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsOptions {
    pub mode: SslMode,
    pub roots: Roots,
    pub client_cert: Option<ClientCert>,
}

impl Default for TlsOptions {
    /// libpq's default: `prefer`, no CA file, no client certificate.
    fn default() -> Self {
        TlsOptions { mode: SslMode::Prefer, roots: Roots::Builtin, client_cert: None }
    }
}

/// The URL parameters [`TlsOptions`] takes out of a URL (the driver knows only `sslmode`, and
/// only three of its values).
#[derive(Debug, Default)]
pub(crate) struct TlsParams {
    sslmode: Option<String>,
    sslrootcert: Option<String>,
    sslcert: Option<String>,
    sslkey: Option<String>,
}

impl TlsParams {
    /// Takes `pair` (`key=value`, percent-encoded) if it is one of the TLS parameters.
    pub(crate) fn take(&mut self, pair: &str) -> bool {
        let Some((key, value)) = pair.split_once('=') else { return false };
        let slot = match key {
            "sslmode" => &mut self.sslmode,
            "sslrootcert" => &mut self.sslrootcert,
            "sslcert" => &mut self.sslcert,
            "sslkey" => &mut self.sslkey,
            _ => return false,
        };
        *slot = Some(percent_encoding::percent_decode_str(value).decode_utf8_lossy().into_owned());
        true
    }

    pub(crate) fn options(self) -> Result<TlsOptions> {
        let roots = match self.sslrootcert.as_deref() {
            None | Some("") => Roots::Builtin,
            Some("system") => Roots::System,
            Some(file) => Roots::File(PathBuf::from(file)),
        };
        let mode = match self.sslmode.as_deref() {
            None if roots == Roots::System => SslMode::VerifyFull,
            None => SslMode::Prefer,
            Some(mode) => SslMode::parse(mode)?,
        };
        if roots == Roots::System && mode != SslMode::VerifyFull {
            return Err(StoreError::Open(format!(
                "sslmode={} may not be used with sslrootcert=system (use sslmode=verify-full, as libpq requires)",
                mode.name()
            )));
        }
        let client_cert = match (self.sslcert, self.sslkey) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(ClientCert { cert: cert.into(), key: key.into() }),
            (Some(_), None) => return Err(StoreError::Open("sslcert is given without sslkey: give both".into())),
            (None, Some(_)) => return Err(StoreError::Open("sslkey is given without sslcert: give both".into())),
        };
        Ok(TlsOptions { mode, roots, client_cert })
    }
}

impl TlsOptions {
    /// The connector every connection of the store uses: reads the CA and client certificate
    /// files (an error names the file) and sets up the checks the mode asks for.
    pub(crate) fn connector(&self) -> Result<MakeTls> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier: Arc<dyn ServerCertVerifier> = match (self.mode, &self.roots) {
            // libpq checks nothing here; with a CA file given, require (and prefer) chain to it.
            (SslMode::Disable | SslMode::Prefer | SslMode::Require, Roots::Builtin) => {
                Arc::new(AnyCertificate(provider.signature_verification_algorithms))
            }
            (SslMode::Disable | SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, roots) => {
                Arc::new(ChainOnly(webpki_verifier(roots, &provider)?))
            }
            (SslMode::VerifyFull, roots) => webpki_verifier(roots, &provider)?,
        };
        let builder = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| StoreError::Open(format!("TLS setup: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier);
        let mut config = match &self.client_cert {
            None => builder.with_no_client_auth(),
            Some(ClientCert { cert, key }) => {
                let certs = CertificateDer::pem_slice_iter(&read("sslcert", cert)?)
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(|e| StoreError::Open(format!("sslcert {}: {e}", cert.display())))?;
                if certs.is_empty() {
                    return Err(StoreError::Open(format!("sslcert {} holds no PEM certificate", cert.display())));
                }
                let private = PrivateKeyDer::from_pem_slice(&read("sslkey", key)?).map_err(|e| {
                    StoreError::Open(format!(
                        "sslkey {}: no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                        key.display()
                    ))
                })?;
                builder.with_client_auth_cert(certs, private).map_err(|e| {
                    StoreError::Open(format!("sslcert {} with sslkey {}: {e}", cert.display(), key.display()))
                })?
            }
        };
        // What libpq 17 sends; servers before 17 ignore it, 17 accepts it (and needs it for
        // sslnegotiation=direct).
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        let roots = match &self.roots {
            Roots::Builtin => "the webpki roots built into waotp; set sslrootcert to your server's CA file".to_owned(),
            Roots::System => "the system's trusted CAs (sslrootcert=system)".to_owned(),
            Roots::File(file) => format!("sslrootcert {}", file.display()),
        };
        Ok(MakeTls { inner: MakeRustlsConnect::new(config), roots: roots.into() })
    }

    /// A connection error's text, where the driver's own words do not say which setting is
    /// at stake: a server without TLS refusing a mode that needs it.
    pub(crate) fn explain(&self, message: String) -> String {
        // tokio-postgres's words for a server that answers the TLS request with "no".
        const NO_TLS: &str = "server does not support TLS";
        if message.contains(NO_TLS) {
            return message.replace(
                NO_TLS,
                &format!(
                    "{NO_TLS} (sslmode={}): turn ssl on in the server, or use sslmode=prefer or disable on a \
                     private network",
                    self.mode.name()
                ),
            );
        }
        message
    }
}

fn read(param: &str, file: &Path) -> Result<Vec<u8>> {
    std::fs::read(file).map_err(|e| StoreError::Open(format!("cannot read {param} {}: {e}", file.display())))
}

fn webpki_verifier(roots: &Roots, provider: &Arc<CryptoProvider>) -> Result<Arc<WebPkiServerVerifier>> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::Builtin => store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        Roots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let errors: Vec<String> = found.errors.iter().map(ToString::to_string).collect();
                return Err(StoreError::Open(format!(
                    "sslrootcert=system: no CA certificate found in the system's store{}",
                    if errors.is_empty() { String::new() } else { format!(" ({})", errors.join("; ")) }
                )));
            }
        }
        Roots::File(file) => {
            for cert in CertificateDer::pem_slice_iter(&read("sslrootcert", file)?) {
                let cert = cert.map_err(|e| StoreError::Open(format!("sslrootcert {}: {e}", file.display())))?;
                store.add(cert).map_err(|e| StoreError::Open(format!("sslrootcert {}: {e}", file.display())))?;
            }
            if store.is_empty() {
                return Err(StoreError::Open(format!("sslrootcert {} holds no PEM certificate", file.display())));
            }
        }
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
        .build()
        .map_err(|e| StoreError::Open(format!("TLS setup: {e}")))
}

/// `require` without a CA file (and `prefer`): any certificate, as libpq, but the handshake
/// must still be signed by the key of the certificate presented.
#[derive(Debug)]
struct AnyCertificate(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

/// `verify-ca`: the certificate must chain to a trusted CA (and be current), whatever host it
/// names. webpki checks the chain before the name, so a name error means the chain passed.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        match self.0.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The store's TLS connector: `tokio-postgres-rustls`'s, with a failed handshake told in
/// words ("certificate not trusted", "hostname mismatch") instead of rustls's error names.
#[derive(Clone)]
pub(crate) struct MakeTls {
    inner: MakeRustlsConnect,
    /// Where the trusted CAs come from, for errors.
    roots: Arc<str>,
}

impl<S> MakeTlsConnect<S> for MakeTls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = <MakeRustlsConnect as MakeTlsConnect<S>>::Stream;
    type TlsConnect = Handshake<<MakeRustlsConnect as MakeTlsConnect<S>>::TlsConnect>;
    type Error = <MakeRustlsConnect as MakeTlsConnect<S>>::Error;

    fn make_tls_connect(&mut self, host: &str) -> std::result::Result<Self::TlsConnect, Self::Error> {
        let inner = <MakeRustlsConnect as MakeTlsConnect<S>>::make_tls_connect(&mut self.inner, host)?;
        Ok(Handshake { inner, host: host.to_owned(), roots: self.roots.clone() })
    }
}

/// One connection's handshake (see [`MakeTls`]).
pub(crate) struct Handshake<T> {
    inner: T,
    host: String,
    roots: Arc<str>,
}

impl<S, T> TlsConnect<S> for Handshake<T>
where
    T: TlsConnect<S, Error = io::Error>,
    T::Future: Send + 'static,
    T::Stream: 'static,
{
    type Stream = T::Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<T::Stream>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        let Handshake { inner, host, roots } = self;
        let handshake = inner.connect(stream);
        Box::pin(async move { handshake.await.map_err(|e| in_words(e, &host, &roots)) })
    }
}

/// A failed handshake, in words a user acts on.
fn in_words(e: io::Error, host: &str, roots: &str) -> io::Error {
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) else { return e };
    let words = match tls {
        rustls::Error::InvalidCertificate(CertificateError::NotValidForNameContext { presented, .. }) => {
            // rustls gives each name as `DnsName("db.example")` or `IpAddress(10.0.0.1)`.
            let bare = |name: &String| {
                let inner = name.split_once('(').and_then(|(_, rest)| rest.strip_suffix(')'));
                inner.unwrap_or(name).trim_matches('"').to_owned()
            };
            let names = match presented.as_slice() {
                [] => "no host name".to_owned(),
                names => names.iter().map(bare).collect::<Vec<_>>().join(", "),
            };
            format!("hostname mismatch: certificate is not valid for {host} (it names {names})")
        }
        rustls::Error::InvalidCertificate(CertificateError::NotValidForName) => {
            format!("hostname mismatch: certificate is not valid for {host}")
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            format!("certificate not trusted (its issuer is not among {roots})")
        }
        rustls::Error::InvalidCertificate(other) => format!("certificate not trusted ({other})"),
        rustls::Error::NoCertificatesPresented => "the server presented no certificate".to_owned(),
        rustls::Error::AlertReceived(alert) => {
            format!("the server ended the TLS handshake ({alert:?}; does it accept the client certificate, if any?)")
        }
        other => format!("TLS handshake failed: {other}"),
    };
    io::Error::new(e.kind(), words)
}

#[cfg(test)]
mod tests {
    use super::{Roots, SslMode, TlsParams};

    fn parse(pairs: &[&str]) -> crate::Result<super::TlsOptions> {
        let mut params = TlsParams::default();
        for pair in pairs {
            assert!(params.take(pair), "{pair}");
        }
        params.options()
    }

    fn error(pairs: &[&str]) -> String {
        parse(pairs).unwrap_err().to_string()
    }

    #[test]
    fn modes_and_roots_as_libpq_reads_them() {
        assert_eq!(parse(&[]).unwrap().mode, SslMode::Prefer);
        for mode in [SslMode::Disable, SslMode::Prefer, SslMode::Require, SslMode::VerifyCa, SslMode::VerifyFull] {
            assert_eq!(parse(&[&format!("sslmode={}", mode.name())]).unwrap().mode, mode);
        }
        let file = parse(&["sslmode=verify-ca", "sslrootcert=/etc/db%20ca.pem"]).unwrap();
        assert_eq!(file.roots, Roots::File("/etc/db ca.pem".into()));
        // sslrootcert=system means verify-full, and no weaker mode (libpq 16).
        let system = parse(&["sslrootcert=system"]).unwrap();
        assert_eq!((system.mode, system.roots), (SslMode::VerifyFull, Roots::System));
        assert!(error(&["sslrootcert=system", "sslmode=require"]).contains("use sslmode=verify-full"));
        assert!(error(&["sslmode=allow"]).contains("not \"allow\""));
        assert!(error(&["sslcert=/c.pem"]).contains("sslcert is given without sslkey"));
        assert!(error(&["sslkey=/k.pem"]).contains("sslkey is given without sslcert"));
        let both = parse(&["sslcert=/c.pem", "sslkey=/k.pem"]).unwrap().client_cert.unwrap();
        assert_eq!((both.cert.to_str(), both.key.to_str()), (Some("/c.pem"), Some("/k.pem")));
    }

    #[test]
    fn a_missing_or_empty_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let connector_error = |pairs: &[String]| {
            let pairs: Vec<&str> = pairs.iter().map(String::as_str).collect();
            parse(&pairs).unwrap().connector().err().expect("an error").to_string()
        };
        let e = connector_error(&["sslmode=verify-full".into(), format!("sslrootcert={}", missing.display())]);
        assert!(e.contains(&format!("cannot read sslrootcert {}", missing.display())), "{e}");
        let e = connector_error(&["sslmode=require".into(), format!("sslrootcert={}", empty.display())]);
        assert!(e.contains(&format!("sslrootcert {} holds no PEM certificate", empty.display())), "{e}");
        let e = connector_error(&[format!("sslcert={}", missing.display()), format!("sslkey={}", empty.display())]);
        assert!(e.contains(&format!("cannot read sslcert {}", missing.display())), "{e}");
        // Without a CA file, the checking modes trust the built-in roots: no file is read.
        assert!(parse(&["sslmode=verify-full"]).unwrap().connector().is_ok());
        assert!(parse(&["sslmode=require"]).unwrap().connector().is_ok());
    }
}
