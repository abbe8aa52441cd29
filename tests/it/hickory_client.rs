//! The same server seen through hickory's own client, over UDP and TCP.

use std::str::FromStr;

use hickory_net::client::{Client, ClientHandle};
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::udp::UdpClientStream;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

use crate::harness::{Server, demo_config};

async fn check(mut client: Client<TokioRuntimeProvider>, transport: &str) {
    let response = client
        .query(
            Name::from_str("web.prod.local.").unwrap(),
            DNSClass::IN,
            RecordType::A,
        )
        .await
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    assert_eq!(response.metadata.response_code, ResponseCode::NoError);
    assert!(response.metadata.authoritative, "{transport}: AA");
    let addresses: Vec<String> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(a) => Some(a.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(addresses, ["10.0.1.10"], "{transport}");

    let response = client
        .query(
            Name::from_str("missing.local.").unwrap(),
            DNSClass::IN,
            RecordType::A,
        )
        .await
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    assert_eq!(
        response.metadata.response_code,
        ResponseCode::NXDomain,
        "{transport}"
    );
    assert_eq!(
        response.authorities.len(),
        1,
        "{transport}: SOA in authority"
    );

    let response = client
        .query(
            Name::from_str("_http._tcp.web.local.").unwrap(),
            DNSClass::IN,
            RecordType::SRV,
        )
        .await
        .unwrap_or_else(|e| panic!("{transport}: {e}"));
    let mut ports: Vec<u16> = response
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::SRV(srv) => Some(srv.port),
            _ => None,
        })
        .collect();
    ports.sort();
    assert_eq!(ports, [32768, 32771, 49153], "{transport}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hickory_client_over_udp_and_tcp() {
    let server = Server::start(&demo_config(), &[], "local");
    let provider = TokioRuntimeProvider::new();

    let stream = UdpClientStream::builder(server.addr(), provider.clone()).build();
    let (client, background) = Client::<TokioRuntimeProvider>::from_sender(stream);
    let task = tokio::spawn(background);
    check(client, "udp").await;
    task.abort();

    let (stream, handle) = TcpClientStream::new(server.addr(), None, None, provider);
    let stream = stream.await.expect("tcp connect");
    let (client, background) = Client::<TokioRuntimeProvider>::new(stream, handle);
    let task = tokio::spawn(background);
    check(client, "tcp").await;
    task.abort();
}
