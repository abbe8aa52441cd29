//! The hickory-server front: hickory-server owns the sockets (UDP and TCP on
//! each listen address) and calls this handler for every request it parsed.
//!
//! The handler hands the request's raw bytes to the same [`Dispatch`] every
//! front uses, and gives hickory-server the response already sized for the
//! transport, so hickory-server's own truncation never cuts an RRset.
//!
//! What it cannot do — zone transfers (one request, several messages),
//! response-rate limiting, our TCP limits — the configuration refuses with
//! `front = "hickory"` (exit 2 naming the key), rather than dropping it
//! silently.

use std::time::Duration;

use anyhow::Context;
use hickory_proto::op::{
    Header, HeaderCounts, Message, MessageType, Metadata, OpCode, ResponseCode,
};
use hickory_proto::serialize::binary::BinDecoder;
use hickory_server::Server;
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::{MessageResponseBuilder, Queries};
use tokio::net::{TcpListener, UdpSocket};

use super::dispatch::{Dispatch, Reply, Timing};
use crate::wire::Transport;

/// How long an idle TCP connection is kept open.
const TCP_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Responses queued per TCP connection (pipelined queries).
const TCP_RESPONSE_BUFFER: usize = 32;

struct Handler {
    dispatch: Dispatch,
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
        let served = self.dispatch.load();
        let mut bytes = Vec::new();
        let reply = self.dispatch.serve_one(
            served.as_deref(),
            request.as_slice(),
            Some(request.src().ip()),
            transport,
            &mut bytes,
            Timing::Since(started),
        );
        drop(served);
        // The dispatch has no transfers here (see the module doc): one
        // message or none.
        let message = match reply {
            Reply::One => Message::from_vec(&bytes).ok(),
            Reply::Nothing | Reply::Transfer(_) => None,
        };
        let Some(message) = message else {
            return no_response(request);
        };

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

/// Serves the bound sockets (one UDP socket per address) until the process
/// ends.
pub async fn serve(dispatch: Dispatch, sockets: super::Sockets) -> anyhow::Result<()> {
    let mut server = Server::new(Handler { dispatch });
    for group in sockets.groups {
        for udp in group.udp {
            udp.set_nonblocking(true)
                .with_context(|| format!("cannot set udp {} non-blocking", group.address))?;
            server.register_socket(
                UdpSocket::from_std(udp)
                    .with_context(|| format!("cannot serve udp {}", group.address))?,
            );
        }
        let tcp = TcpListener::from_std(group.tcp)
            .with_context(|| format!("cannot serve tcp {}", group.address))?;
        server.register_listener(tcp, TCP_IDLE_TIMEOUT, TCP_RESPONSE_BUFFER);
        tracing::info!(address = %group.address, "answering DNS on udp and tcp");
    }
    server
        .block_until_done()
        .await
        .context("DNS server stopped")?;
    Ok(())
}
