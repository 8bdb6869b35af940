//! `edge healthcheck`: a liveness probe of the local server for container health checks, so an
//! image needs no curl. It speaks TLS to loopback and does not verify the certificate: it checks
//! that this process serves, not who it is (the certificate names the public host, not 127.0.0.1).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Empty;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// One HTTP/1.1 GET of `path` over `io`; the status.
async fn get<IO>(io: IO, path: &str) -> Result<u16, crate::error::BoxError>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io)).await?;
    let driver = tokio::spawn(conn);
    let req = http::Request::get(path)
        .header(http::header::HOST, "localhost")
        .body(Empty::<bytes::Bytes>::new())?;
    let res = sender.send_request(req).await;
    driver.abort();
    Ok(res?.status().as_u16())
}

/// GETs `path` on the admin listener at `addr` (plain HTTP: a worker serves no HTTPS); Ok(status)
/// or a reason.
pub async fn probe_admin(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<u16, crate::error::BoxError> {
    let run = async { get(tokio::net::TcpStream::connect(addr).await?, path).await };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("no answer from {addr} within {timeout:?}"))?
}

/// GETs `path` on `addr` over TLS; Ok(status) or a reason.
pub async fn probe(
    addr: SocketAddr,
    path: &str,
    timeout: Duration,
) -> Result<u16, crate::error::BoxError> {
    let run = async {
        let provider = crate::http::tls::provider();
        let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
            .with_no_client_auth();
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tls = connector
            .connect(ServerName::IpAddress(addr.ip().into()), tcp)
            .await?;
        get(tls, path).await
    };
    tokio::time::timeout(timeout, run)
        .await
        .map_err(|_| format!("no answer from {addr} within {timeout:?}"))?
}
