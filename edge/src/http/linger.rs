//! Lingering close (RFC 9112 section 9.6; nginx's `lingering_close`). When hyper closes a
//! connection on which the client is still sending (a 400 for a malformed header, a 413 or 401
//! answered before the body was read), closing a socket with unread bytes makes the kernel send
//! a reset, which fails the client's writes and can destroy the answer before the client reads
//! it: the client sees "connection reset" or a TLS EOF instead of the error that explains it.
//! So a close first sends TLS `close_notify` and a FIN, then reads away (undecrypted) whatever
//! still arrives until the client closes too, for at most a few seconds.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::server::TlsStream;

/// The longest a closing connection reads for the client's side to close: enough for a client
/// to finish sending a request body the edge refused, short enough that closing connections do
/// not pile up.
const LINGER_FOR: Duration = Duration::from_secs(5);
/// A client quiet for this long is done sending (an idle keep-alive client at shutdown, say):
/// close without waiting for it.
const QUIET_FOR: Duration = Duration::from_millis(500);

/// A server-side TLS stream whose shutdown lingers; everything else is passed through.
pub struct Lingering {
    inner: TlsStream<TcpStream>,
    closing: Option<Closing>,
}

struct Closing {
    deadline: Pin<Box<Sleep>>,
    quiet: Pin<Box<Sleep>>,
}

impl Lingering {
    pub fn new(inner: TlsStream<TcpStream>) -> Self {
        Self {
            inner,
            closing: None,
        }
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.closing.is_none() {
            // close_notify, flushed, then the TCP write half shut (FIN).
            ready!(Pin::new(&mut this.inner).poll_shutdown(cx))?;
            this.closing = Some(Closing {
                deadline: Box::pin(tokio::time::sleep(LINGER_FOR)),
                quiet: Box::pin(tokio::time::sleep(QUIET_FOR)),
            });
        }
        let Some(closing) = this.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        let tcp = this.inner.get_mut().0;
        let mut scratch = [0u8; 4096];
        loop {
            if closing.deadline.as_mut().poll(cx).is_ready()
                || closing.quiet.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(Ok(()));
            }
            let mut buf = ReadBuf::new(&mut scratch);
            match Pin::new(&mut *tcp).poll_read(cx, &mut buf) {
                // The client closed (or the socket failed): nothing is left to protect.
                Poll::Ready(Ok(())) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Poll::Ready(Ok(())) => {
                    let again = tokio::time::Instant::now() + QUIET_FOR;
                    closing.quiet.as_mut().reset(again);
                }
                Poll::Ready(Err(_)) => return Poll::Ready(Ok(())),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}
