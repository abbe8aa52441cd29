//! The hickory-server front: hickory-server owns the sockets (UDP and TCP on
//! each listen address) and calls this handler for every request it parsed.
//!
//! The handler re-reads the request's raw bytes with the same answer function
//! every front uses, and hands hickory-server a response already sized for
//! the transport, so hickory-server's own truncation never cuts an RRset.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use hickory_proto::op::{Header, HeaderCounts, MessageType, Metadata, OpCode, ResponseCode};
use hickory_proto::serialize::binary::BinDecoder;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tokio::net::{TcpListener, UdpSocket};

use crate::dns::answer::{self, Limits, Transport};
use crate::zone::SharedZone;

/// How long an idle TCP connection is kept open.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection (pipelined queries).
const TCP_RESPONSE_BUFFER: usize = 32;

struct Handler {
    zone: SharedZone,
    limits: Limits,
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let started = std::time::Instant::now();
        let transport = match request.protocol() {
            Protocol::Udp => Transport::Udp,
            _ => Transport::Tcp,
        };
        let snapshot = self.zone.load();
        let Some((mut message, limit)) = answer::respond_message(
            snapshot.as_deref(),
            request.as_slice(),
            transport,
            &self.limits,
        ) else {
            return no_response(request);
        };
        answer::fit(&mut message, limit);
        crate::ops::metrics::record_query(
            message.queries.first().map(|q| q.query_type()),
            message.metadata.response_code,
            message.metadata.truncation,
            started.elapsed(),
        );

        // The question goes back byte for byte as asked (hickory-server keeps
        // the original bytes); a FORMERR for a bad question count has none.
        let empty = Queries::read(&mut BinDecoder::new(&[]), 0);
        let queries = match (&empty, message.queries.is_empty()) {
            (Ok(empty), true) => empty,
            _ => &request.queries,
        };
        let mut builder = MessageResponseBuilder::new(queries, None);
        if let Some(edns) = &message.edns {
            builder.edns(edns);
        }
        let response = builder.build(
            message.metadata,
            message.answers.iter(),
            message.authorities.iter(),
            std::iter::empty(),
            message.additionals.iter(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(error) => {
                tracing::debug!(%error, "could not send a response");
                no_response(request)
            }
        }
    }
}

/// What hickory-server logs for a request left unanswered.
fn no_response(request: &Request) -> ResponseInfo {
    let mut metadata = Metadata::new(request.metadata.id, MessageType::Response, OpCode::Query);
    metadata.response_code = ResponseCode::ServFail;
    ResponseInfo::from(Header {
        metadata,
        counts: HeaderCounts::default(),
    })
}

/// Binds UDP and TCP on every address and serves until the process ends.
pub async fn serve(zone: SharedZone, listen: &[SocketAddr], limits: Limits) -> anyhow::Result<()> {
    let mut server = Server::new(Handler { zone, limits });
    for address in listen {
        let udp = UdpSocket::bind(address)
            .await
            .with_context(|| format!("cannot listen on udp {address}"))?;
        let tcp = TcpListener::bind(address)
            .await
            .with_context(|| format!("cannot listen on tcp {address}"))?;
        server.register_socket(udp);
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        tracing::info!(%address, "answering DNS on udp and tcp");
    }
    server
        .block_until_done()
        .await
        .context("DNS server stopped")?;
    Ok(())
}
