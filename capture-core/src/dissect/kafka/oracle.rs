//! The `kafka-protocol` crate as the oracle: what it encodes, at every version of every API key
//! it knows, must decode here (header, topics, partitions, error codes, records), alone and
//! through the engine on a synthetic TCP conversation.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::messages::create_partitions_response::*;
use kafka_protocol::messages::create_topics_request::*;
use kafka_protocol::messages::create_topics_response::*;
use kafka_protocol::messages::delete_groups_response::*;
use kafka_protocol::messages::delete_records_request::*;
use kafka_protocol::messages::delete_records_response::*;
use kafka_protocol::messages::delete_topics_request::*;
use kafka_protocol::messages::delete_topics_response::*;
use kafka_protocol::messages::describe_groups_response::*;
use kafka_protocol::messages::fetch_request::*;
use kafka_protocol::messages::fetch_response::*;
use kafka_protocol::messages::find_coordinator_response::*;
use kafka_protocol::messages::list_offsets_request::*;
use kafka_protocol::messages::list_offsets_response::*;
use kafka_protocol::messages::metadata_request::*;
use kafka_protocol::messages::metadata_response::*;
use kafka_protocol::messages::offset_commit_request::*;
use kafka_protocol::messages::offset_commit_response::*;
use kafka_protocol::messages::offset_delete_response::*;
use kafka_protocol::messages::offset_fetch_request::*;
use kafka_protocol::messages::offset_fetch_response::*;
use kafka_protocol::messages::offset_for_leader_epoch_request::*;
use kafka_protocol::messages::offset_for_leader_epoch_response::*;
use kafka_protocol::messages::produce_request::*;
use kafka_protocol::messages::produce_response::*;
use kafka_protocol::messages::txn_offset_commit_request::*;
use kafka_protocol::messages::txn_offset_commit_response::*;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use kafka_protocol::records::{Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};

use super::errors::error_name;
use super::parse::tests::caps;
use super::parse::{self, Drops};
use super::tests::{conv, run};
use super::{KafkaEntry, KafkaPartition, parse::api_name, parse::flexible};
use crate::dissect::Probe;
use crate::limits::Limits;

const CLIENT: &str = "oracle-client";

/// A request frame: length, header (v2 for flexible versions, v1 otherwise), body.
fn request_frame(key: ApiKey, v: i16, corr: i32, body: &RequestKind) -> Option<Vec<u8>> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(v)
        .with_correlation_id(corr)
        .with_client_id(Some(StrBytes::from_static_str(CLIENT)));
    let mut b = BytesMut::new();
    header.encode(&mut b, key.request_header_version(v)).ok()?;
    body.encode(&mut b, v).ok()?;
    let mut f = (b.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    Some(f)
}

fn response_frame(key: ApiKey, v: i16, corr: i32, body: &ResponseKind) -> Option<Vec<u8>> {
    let mut b = BytesMut::new();
    ResponseHeader::default()
        .with_correlation_id(corr)
        .encode(&mut b, key.response_header_version(v))
        .ok()?;
    body.encode(&mut b, v).ok()?;
    let mut f = (b.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(&b);
    Some(f)
}

fn versions(key: ApiKey) -> impl Iterator<Item = i16> {
    let r = key.valid_versions();
    r.min..=r.max
}

fn decode_request(frame: &[u8]) -> KafkaEntry {
    parse::parse_request(&frame[4..], &caps(), &mut Drops::default()).expect("a request header")
}

fn decode_response(req: &KafkaEntry, frame: &[u8]) -> KafkaEntry {
    let mut e = req.clone();
    parse::parse_response(&frame[4..], &mut e, &caps(), &mut Drops::default());
    e
}

fn snake(camel: &str) -> String {
    let mut s = String::new();
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('_');
        }
        s.push(c.to_ascii_uppercase());
    }
    s
}

#[test]
fn names_and_flexible_versions_agree_with_the_crate_for_every_key() {
    for key in ApiKey::iter() {
        let name = api_name(key as i16).unwrap_or_else(|| panic!("{key:?} has no name"));
        if key != ApiKey::ListConfigResources {
            assert_eq!(name, snake(&format!("{key:?}")), "{key:?}");
        }
        for v in versions(key) {
            assert_eq!(
                flexible(key as i16, v),
                key.request_header_version(v) >= 2,
                "{key:?} v{v}"
            );
        }
    }
}

#[test]
fn error_names_agree_with_the_crate() {
    for code in -1..=200i16 {
        let ours = error_name(code);
        match kafka_protocol::error::ResponseError::try_from_code(code) {
            None => assert_eq!(ours, Some("NONE")),
            Some(kafka_protocol::error::ResponseError::Unknown(_)) => assert_eq!(ours, None, "{code}"),
            Some(e) => assert_eq!(ours.map(str::to_string), Some(snake(&format!("{e:?}"))), "{code}"),
        }
    }
}

/// Every key at every version the crate encodes: the header reads back, the probe claims the
/// frame, and the engine pairs each request with its (default) response.
#[test]
fn every_key_and_version_decodes_alone_and_through_the_engine() {
    let (mut encoded, mut refused) = (0, Vec::new());
    let mut c = conv(9092, true);
    let mut expected = Vec::new();
    let mut corr = 1;
    for key in ApiKey::iter() {
        for v in versions(key) {
            let Some(frame) = request_frame(key, v, corr, &default_request(key)) else {
                refused.push(format!("{key:?} v{v}"));
                continue;
            };
            encoded += 1;
            assert_eq!(parse::probe(&frame), Probe::Match, "{key:?} v{v}");
            let e = decode_request(&frame);
            assert_eq!(
                (e.api_key, e.api_version, e.correlation_id, e.client_id.as_deref()),
                (Some(key as i16), Some(v), corr, Some(CLIENT)),
                "{key:?} v{v}"
            );
            // Every prefix decodes without panicking.
            for n in 4..frame.len() {
                let _ = parse::parse_request(&frame[4..n], &caps(), &mut Drops::default());
            }
            if let Some(resp) = response_frame(key, v, corr, &default_response(key)) {
                let r = decode_response(&e, &resp);
                assert!(r.errors.is_empty(), "{key:?} v{v}: {:?}", r.errors);
                c.client_send(&frame, 10);
                c.server_send(&resp, 10);
                expected.push((key as i16, v, corr));
            }
            corr += 1;
        }
    }
    // Versions the crate lists but cannot encode itself (its schemas lag its version table).
    assert!(refused.len() * 20 < encoded, "{encoded} encoded, refused: {refused:?}");
    c.close();
    let (es, _) = run(c, Limits::default());
    let got: Vec<_> = es
        .iter()
        .map(|e| {
            let k = e.kafka().unwrap();
            assert!(k.response_bytes.is_some() && k.flags == 0, "{k:?}");
            (k.api_key.unwrap(), k.api_version.unwrap(), k.correlation_id)
        })
        .collect();
    assert_eq!(got, expected);
}

fn topic(s: &'static str) -> TopicName {
    TopicName(StrBytes::from_static_str(s))
}

fn records(n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut headers = IndexMap::new();
            headers.insert(StrBytes::from_static_str("trace"), Some(Bytes::from(format!("t{i}"))));
            Record {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 0,
                producer_id: -1,
                producer_epoch: -1,
                timestamp_type: TimestampType::Creation,
                offset: i as i64,
                sequence: i as i32,
                timestamp: 1_700_000_000_000 + i as i64,
                key: Some(Bytes::from(format!("key-{i}"))),
                value: Some(Bytes::from(format!("value {i} ").repeat(40))),
                headers,
            }
        })
        .collect()
}

fn batch(n: usize, compression: Compression) -> Bytes {
    let mut b = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut b,
        &records(n),
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("the crate encodes the batch");
    b.freeze()
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

fn check_records(e: &KafkaEntry, n: usize, what: &str) {
    assert_eq!(e.record_count, Some(n as u64), "{what}");
    assert!(e.record_bytes.unwrap() > 0, "{what}");
    assert_eq!(e.records.len(), n.min(caps().records.records), "{what}");
    for (i, r) in e.records.iter().enumerate() {
        assert_eq!(
            r.key.as_ref().unwrap().bytes.as_ref(),
            format!("key-{i}").as_bytes(),
            "{what}"
        );
        let v = r.value.as_ref().unwrap();
        let full = format!("value {i} ").repeat(40);
        assert_eq!(v.len, full.len() as u64, "{what}");
        assert_eq!(&v.bytes[..], &full.as_bytes()[..v.bytes.len()], "{what}");
        assert!(v.truncated(), "{what}: values are cut at kafka_value_bytes");
        assert_eq!(r.headers.len(), 1, "{what}");
        assert_eq!(&*r.headers[0].0, "trace");
        assert_eq!(
            r.headers[0].1.as_ref().unwrap().bytes.as_ref(),
            format!("t{i}").as_bytes()
        );
        assert_eq!(r.timestamp, 1_700_000_000_000 + i as i64, "{what}");
        assert_eq!(r.offset, i as i64, "{what}");
        assert_eq!(r.partition, 2, "{what}");
    }
}

#[test]
fn produce_requests_at_every_version_with_every_codec() {
    for v in versions(ApiKey::Produce) {
        for (ci, codec) in CODECS.into_iter().enumerate() {
            // The crate writes record batches v2 only; legacy message sets are tested in records.rs.
            let n = 20;
            let t = TopicProduceData::default()
                .with_name(topic("orders"))
                .with_partition_data(vec![
                    PartitionProduceData::default()
                        .with_index(2)
                        .with_records(Some(batch(n, codec))),
                ]);
            let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![t]);
            let frame = request_frame(ApiKey::Produce, v, 5, &RequestKind::Produce(req)).unwrap();
            let e = decode_request(&frame);
            let what = format!("produce v{v} codec {ci}");
            if v <= 12 {
                assert_eq!(e.topics, vec!["orders".into()], "{what}");
            }
            let want_topic = (v <= 12).then_some(0);
            assert_eq!(
                e.partitions,
                vec![KafkaPartition {
                    topic: want_topic,
                    partition: 2
                }],
                "{what}"
            );
            check_records(&e, n, &what);
            assert_eq!(e.compression, 1 << ci, "{what}");
            assert_eq!(e.records[0].topic, want_topic, "{what}");
        }
        let resp = ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default()
                .with_name(topic("orders"))
                .with_partition_responses(vec![
                    PartitionProduceResponse::default().with_index(2).with_error_code(6),
                    PartitionProduceResponse::default().with_index(3).with_error_code(3),
                ]),
        ]);
        let req = decode_request(&request_frame(ApiKey::Produce, v, 5, &default_request(ApiKey::Produce)).unwrap());
        let r = decode_response(
            &req,
            &response_frame(ApiKey::Produce, v, 5, &ResponseKind::Produce(resp)).unwrap(),
        );
        assert_eq!(r.errors, vec![6, 3], "produce response v{v}");
        assert_eq!(
            r.error_names().collect::<Vec<_>>(),
            vec!["NOT_LEADER_OR_FOLLOWER", "UNKNOWN_TOPIC_OR_PARTITION"]
        );
    }
}

#[test]
fn fetch_requests_and_responses_at_every_version() {
    for v in versions(ApiKey::Fetch) {
        let t = FetchTopic::default().with_topic(topic("orders")).with_partitions(vec![
            FetchPartition::default().with_partition(2).with_fetch_offset(10),
            FetchPartition::default().with_partition(5),
        ]);
        let req = FetchRequest::default().with_max_wait_ms(500).with_topics(vec![t]);
        let frame = request_frame(ApiKey::Fetch, v, 6, &RequestKind::Fetch(req)).unwrap();
        let e = decode_request(&frame);
        let names = v <= 12;
        assert_eq!(e.topics.len(), usize::from(names), "fetch v{v}");
        assert_eq!(e.partition_numbers(), vec![2, 5], "fetch v{v}");
        for (ci, codec) in CODECS.into_iter().enumerate() {
            let part = PartitionData::default()
                .with_partition_index(2)
                .with_error_code(1)
                .with_aborted_transactions(Some(vec![]))
                .with_records(Some(batch(20, codec)));
            let resp = FetchResponse::default().with_error_code(0).with_responses(vec![
                FetchableTopicResponse::default()
                    .with_topic(topic("orders"))
                    .with_partitions(vec![part]),
            ]);
            let rf = response_frame(ApiKey::Fetch, v, 6, &ResponseKind::Fetch(resp)).unwrap();
            let r = decode_response(&e, &rf);
            let what = format!("fetch response v{v} codec {ci}");
            assert_eq!(r.errors, vec![1], "{what}");
            check_records(&r, 20, &what);
            assert_eq!(r.records[0].topic, names.then_some(0), "{what}");
            assert_eq!(r.compression, 1 << ci, "{what}");
            // Every prefix (a response cut by the capture or by dissector_buffer_bytes) reads
            // what it holds, within the caps.
            if [4, 12, 18].contains(&v) {
                for n in 4..rf.len() {
                    let mut cut = e.clone();
                    parse::parse_response(&rf[4..n], &mut cut, &caps(), &mut Drops::default());
                    assert!(
                        cut.records.len() <= caps().records.records && cut.errors.len() <= 1,
                        "{what} @{n}"
                    );
                }
            }
        }
    }
}

/// ListOffsets, Metadata, OffsetCommit, OffsetFetch and the other requests that name topics and
/// partitions, at every version the crate encodes.
#[test]
fn topics_and_partitions_of_the_other_requests() {
    let mut checked = 0;
    for key in ApiKey::iter() {
        for v in versions(key) {
            let body = match key {
                ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default().with_topics(vec![
                    ListOffsetsTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![ListOffsetsPartition::default().with_partition_index(4)]),
                ])),
                ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default().with_topics(Some(vec![
                    MetadataRequestTopic::default().with_name(Some(topic("orders"))),
                ]))),
                ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default().with_topics(vec![
                    OffsetCommitRequestTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![OffsetCommitRequestPartition::default().with_partition_index(4)]),
                ])),
                ApiKey::OffsetFetch if v <= 7 => {
                    RequestKind::OffsetFetch(OffsetFetchRequest::default().with_topics(Some(vec![
                        OffsetFetchRequestTopic::default()
                            .with_name(topic("orders"))
                            .with_partition_indexes(vec![4]),
                    ])))
                }
                ApiKey::OffsetFetch => RequestKind::OffsetFetch(OffsetFetchRequest::default().with_groups(vec![
                    OffsetFetchRequestGroup::default().with_topics(Some(vec![
                        OffsetFetchRequestTopics::default()
                            .with_name(topic("orders"))
                            .with_partition_indexes(vec![4]),
                    ])),
                ])),
                ApiKey::CreateTopics => RequestKind::CreateTopics(
                    CreateTopicsRequest::default()
                        .with_topics(vec![CreatableTopic::default().with_name(topic("orders"))]),
                ),
                ApiKey::DeleteTopics if v <= 5 => {
                    RequestKind::DeleteTopics(DeleteTopicsRequest::default().with_topic_names(vec![topic("orders")]))
                }
                ApiKey::DeleteTopics => RequestKind::DeleteTopics(
                    DeleteTopicsRequest::default()
                        .with_topics(vec![DeleteTopicState::default().with_name(Some(topic("orders")))]),
                ),
                ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default().with_topics(vec![
                    DeleteRecordsTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![DeleteRecordsPartition::default().with_partition_index(4)]),
                ])),
                ApiKey::OffsetForLeaderEpoch => {
                    RequestKind::OffsetForLeaderEpoch(OffsetForLeaderEpochRequest::default().with_topics(vec![
                        OffsetForLeaderTopic::default()
                            .with_topic(topic("orders"))
                            .with_partitions(vec![OffsetForLeaderPartition::default().with_partition(4)]),
                    ]))
                }
                ApiKey::TxnOffsetCommit => {
                    RequestKind::TxnOffsetCommit(TxnOffsetCommitRequest::default().with_topics(vec![
                        TxnOffsetCommitRequestTopic::default()
                            .with_name(topic("orders"))
                            .with_partitions(vec![TxnOffsetCommitRequestPartition::default().with_partition_index(4)]),
                    ]))
                }
                _ => continue,
            };
            let Some(frame) = request_frame(key, v, 1, &body) else {
                continue;
            };
            checked += 1;
            let e = decode_request(&frame);
            let by_id = matches!(key, ApiKey::OffsetCommit | ApiKey::OffsetFetch) && v >= 10;
            if !by_id {
                assert_eq!(e.topics, vec!["orders".into()], "{key:?} v{v}");
            }
            let names_partitions = !matches!(key, ApiKey::Metadata | ApiKey::CreateTopics | ApiKey::DeleteTopics);
            if names_partitions {
                assert_eq!(e.partition_numbers(), vec![4], "{key:?} v{v}");
            }
        }
    }
    assert!(checked > 60, "{checked}");
}

/// Responses whose error codes are read: each at every version, with a non-zero code.
#[test]
fn error_codes_of_responses_at_every_version() {
    let mut checked = 0;
    for key in ApiKey::iter() {
        for v in versions(key) {
            let code = 27;
            let body = match key {
                ApiKey::ListOffsets => ResponseKind::ListOffsets(ListOffsetsResponse::default().with_topics(vec![
                    ListOffsetsTopicResponse::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![ListOffsetsPartitionResponse::default().with_error_code(code)]),
                ])),
                ApiKey::Metadata => ResponseKind::Metadata(
                    MetadataResponse::default()
                        .with_brokers(vec![
                            MetadataResponseBroker::default().with_host(StrBytes::from_static_str("b")),
                        ])
                        .with_topics(vec![
                            MetadataResponseTopic::default()
                                .with_name(Some(topic("orders")))
                                .with_error_code(code)
                                .with_partitions(vec![MetadataResponsePartition::default().with_error_code(9)]),
                        ]),
                ),
                ApiKey::OffsetCommit => ResponseKind::OffsetCommit(OffsetCommitResponse::default().with_topics(vec![
                    OffsetCommitResponseTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![OffsetCommitResponsePartition::default().with_error_code(code)]),
                ])),
                ApiKey::OffsetFetch if v <= 7 => ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_topics(
                    vec![OffsetFetchResponseTopic::default().with_name(topic("orders")).with_partitions(vec![
                        OffsetFetchResponsePartition::default().with_error_code(code),
                    ])],
                )),
                ApiKey::OffsetFetch => ResponseKind::OffsetFetch(OffsetFetchResponse::default().with_groups(vec![
                    OffsetFetchResponseGroup::default().with_topics(vec![
                        OffsetFetchResponseTopics::default().with_name(topic("orders")).with_partitions(vec![
                            OffsetFetchResponsePartitions::default().with_error_code(code),
                        ]),
                    ]),
                ])),
                ApiKey::FindCoordinator if v <= 3 => {
                    ResponseKind::FindCoordinator(FindCoordinatorResponse::default().with_error_code(code))
                }
                ApiKey::FindCoordinator => ResponseKind::FindCoordinator(
                    FindCoordinatorResponse::default()
                        .with_coordinators(vec![Coordinator::default().with_error_code(code)]),
                ),
                ApiKey::JoinGroup => ResponseKind::JoinGroup(JoinGroupResponse::default().with_error_code(code)),
                ApiKey::Heartbeat => ResponseKind::Heartbeat(HeartbeatResponse::default().with_error_code(code)),
                ApiKey::LeaveGroup => ResponseKind::LeaveGroup(LeaveGroupResponse::default().with_error_code(code)),
                ApiKey::SyncGroup => ResponseKind::SyncGroup(SyncGroupResponse::default().with_error_code(code)),
                // The error sits in the second group, after a first one with a member.
                ApiKey::DescribeGroups => {
                    ResponseKind::DescribeGroups(DescribeGroupsResponse::default().with_groups(vec![
                        DescribedGroup::default().with_members(vec![
                        DescribedGroupMember::default()
                            .with_member_metadata(Bytes::from_static(b"meta"))
                            .with_member_assignment(Bytes::from_static(b"assignment")),
                    ]),
                        DescribedGroup::default().with_error_code(code),
                    ]))
                }
                ApiKey::ListGroups => ResponseKind::ListGroups(ListGroupsResponse::default().with_error_code(code)),
                ApiKey::SaslHandshake => {
                    ResponseKind::SaslHandshake(SaslHandshakeResponse::default().with_error_code(code))
                }
                ApiKey::ApiVersions => ResponseKind::ApiVersions(ApiVersionsResponse::default().with_error_code(code)),
                ApiKey::CreateTopics => ResponseKind::CreateTopics(CreateTopicsResponse::default().with_topics(vec![
                    CreatableTopicResult::default().with_name(topic("orders")).with_error_code(code),
                ])),
                ApiKey::DeleteTopics => {
                    ResponseKind::DeleteTopics(DeleteTopicsResponse::default().with_responses(vec![
                    DeletableTopicResult::default().with_name(Some(topic("orders"))).with_error_code(code),
                ]))
                }
                ApiKey::InitProducerId => {
                    ResponseKind::InitProducerId(InitProducerIdResponse::default().with_error_code(code))
                }
                ApiKey::AddOffsetsToTxn => {
                    ResponseKind::AddOffsetsToTxn(AddOffsetsToTxnResponse::default().with_error_code(code))
                }
                ApiKey::EndTxn => ResponseKind::EndTxn(EndTxnResponse::default().with_error_code(code)),
                ApiKey::SaslAuthenticate => {
                    ResponseKind::SaslAuthenticate(SaslAuthenticateResponse::default().with_error_code(code))
                }
                ApiKey::DeleteRecords => {
                    ResponseKind::DeleteRecords(DeleteRecordsResponse::default().with_topics(vec![
                    DeleteRecordsTopicResult::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![DeleteRecordsPartitionResult::default().with_error_code(code)]),
                ]))
                }
                ApiKey::OffsetForLeaderEpoch => {
                    ResponseKind::OffsetForLeaderEpoch(OffsetForLeaderEpochResponse::default().with_topics(vec![
                        OffsetForLeaderTopicResult::default()
                            .with_topic(topic("orders"))
                            .with_partitions(vec![
                                offset_for_leader_epoch_response::EpochEndOffset::default().with_error_code(code),
                            ]),
                    ]))
                }
                ApiKey::TxnOffsetCommit => {
                    ResponseKind::TxnOffsetCommit(TxnOffsetCommitResponse::default().with_topics(vec![
                        TxnOffsetCommitResponseTopic::default()
                            .with_name(topic("orders"))
                            .with_partitions(vec![TxnOffsetCommitResponsePartition::default().with_error_code(code)]),
                    ]))
                }
                ApiKey::CreatePartitions => {
                    ResponseKind::CreatePartitions(CreatePartitionsResponse::default().with_results(vec![
                        CreatePartitionsTopicResult::default().with_name(topic("orders")).with_error_code(code),
                    ]))
                }
                ApiKey::OffsetDelete => ResponseKind::OffsetDelete(OffsetDeleteResponse::default().with_topics(vec![
                    OffsetDeleteResponseTopic::default()
                        .with_name(topic("orders"))
                        .with_partitions(vec![OffsetDeleteResponsePartition::default().with_error_code(code)]),
                ])),
                ApiKey::DeleteGroups => ResponseKind::DeleteGroups(
                    DeleteGroupsResponse::default()
                        .with_results(vec![DeletableGroupResult::default().with_error_code(code)]),
                ),
                _ => continue,
            };
            let (Some(req), Some(resp)) = (
                request_frame(key, v, 1, &default_request(key)),
                response_frame(key, v, 1, &body),
            ) else {
                continue;
            };
            checked += 1;
            let r = decode_response(&decode_request(&req), &resp);
            let want: Vec<i16> = if key == ApiKey::Metadata {
                vec![code, 9]
            } else {
                vec![code]
            };
            assert_eq!(r.errors, want, "{key:?} v{v}");
            assert_eq!(
                r.error_names().next().as_deref(),
                Some("REBALANCE_IN_PROGRESS"),
                "{key:?} v{v}"
            );
        }
    }
    assert!(checked > 100, "{checked}");
}

/// A request of the kind with every field at its default.
fn default_request(k: ApiKey) -> RequestKind {
    match k {
        ApiKey::Produce => RequestKind::Produce(Default::default()),
        ApiKey::Fetch => RequestKind::Fetch(Default::default()),
        ApiKey::ListOffsets => RequestKind::ListOffsets(Default::default()),
        ApiKey::Metadata => RequestKind::Metadata(Default::default()),
        ApiKey::OffsetCommit => RequestKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => RequestKind::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => RequestKind::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => RequestKind::JoinGroup(Default::default()),
        ApiKey::Heartbeat => RequestKind::Heartbeat(Default::default()),
        ApiKey::LeaveGroup => RequestKind::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => RequestKind::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => RequestKind::DescribeGroups(Default::default()),
        ApiKey::ListGroups => RequestKind::ListGroups(Default::default()),
        ApiKey::SaslHandshake => RequestKind::SaslHandshake(Default::default()),
        ApiKey::ApiVersions => RequestKind::ApiVersions(Default::default()),
        ApiKey::CreateTopics => RequestKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => RequestKind::DeleteTopics(Default::default()),
        ApiKey::DeleteRecords => RequestKind::DeleteRecords(Default::default()),
        ApiKey::InitProducerId => RequestKind::InitProducerId(Default::default()),
        ApiKey::OffsetForLeaderEpoch => RequestKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::AddPartitionsToTxn => RequestKind::AddPartitionsToTxn(Default::default()),
        ApiKey::AddOffsetsToTxn => RequestKind::AddOffsetsToTxn(Default::default()),
        ApiKey::EndTxn => RequestKind::EndTxn(Default::default()),
        ApiKey::WriteTxnMarkers => RequestKind::WriteTxnMarkers(Default::default()),
        ApiKey::TxnOffsetCommit => RequestKind::TxnOffsetCommit(Default::default()),
        ApiKey::DescribeAcls => RequestKind::DescribeAcls(Default::default()),
        ApiKey::CreateAcls => RequestKind::CreateAcls(Default::default()),
        ApiKey::DeleteAcls => RequestKind::DeleteAcls(Default::default()),
        ApiKey::DescribeConfigs => RequestKind::DescribeConfigs(Default::default()),
        ApiKey::AlterConfigs => RequestKind::AlterConfigs(Default::default()),
        ApiKey::AlterReplicaLogDirs => RequestKind::AlterReplicaLogDirs(Default::default()),
        ApiKey::DescribeLogDirs => RequestKind::DescribeLogDirs(Default::default()),
        ApiKey::SaslAuthenticate => RequestKind::SaslAuthenticate(Default::default()),
        ApiKey::CreatePartitions => RequestKind::CreatePartitions(Default::default()),
        ApiKey::CreateDelegationToken => RequestKind::CreateDelegationToken(Default::default()),
        ApiKey::RenewDelegationToken => RequestKind::RenewDelegationToken(Default::default()),
        ApiKey::ExpireDelegationToken => RequestKind::ExpireDelegationToken(Default::default()),
        ApiKey::DescribeDelegationToken => RequestKind::DescribeDelegationToken(Default::default()),
        ApiKey::DeleteGroups => RequestKind::DeleteGroups(Default::default()),
        ApiKey::ElectLeaders => RequestKind::ElectLeaders(Default::default()),
        ApiKey::IncrementalAlterConfigs => RequestKind::IncrementalAlterConfigs(Default::default()),
        ApiKey::AlterPartitionReassignments => RequestKind::AlterPartitionReassignments(Default::default()),
        ApiKey::ListPartitionReassignments => RequestKind::ListPartitionReassignments(Default::default()),
        ApiKey::OffsetDelete => RequestKind::OffsetDelete(Default::default()),
        ApiKey::DescribeClientQuotas => RequestKind::DescribeClientQuotas(Default::default()),
        ApiKey::AlterClientQuotas => RequestKind::AlterClientQuotas(Default::default()),
        ApiKey::DescribeUserScramCredentials => RequestKind::DescribeUserScramCredentials(Default::default()),
        ApiKey::AlterUserScramCredentials => RequestKind::AlterUserScramCredentials(Default::default()),
        ApiKey::Vote => RequestKind::Vote(Default::default()),
        ApiKey::BeginQuorumEpoch => RequestKind::BeginQuorumEpoch(Default::default()),
        ApiKey::EndQuorumEpoch => RequestKind::EndQuorumEpoch(Default::default()),
        ApiKey::DescribeQuorum => RequestKind::DescribeQuorum(Default::default()),
        ApiKey::AlterPartition => RequestKind::AlterPartition(Default::default()),
        ApiKey::UpdateFeatures => RequestKind::UpdateFeatures(Default::default()),
        ApiKey::Envelope => RequestKind::Envelope(Default::default()),
        ApiKey::FetchSnapshot => RequestKind::FetchSnapshot(Default::default()),
        ApiKey::DescribeCluster => RequestKind::DescribeCluster(Default::default()),
        ApiKey::DescribeProducers => RequestKind::DescribeProducers(Default::default()),
        ApiKey::BrokerRegistration => RequestKind::BrokerRegistration(Default::default()),
        ApiKey::BrokerHeartbeat => RequestKind::BrokerHeartbeat(Default::default()),
        ApiKey::UnregisterBroker => RequestKind::UnregisterBroker(Default::default()),
        ApiKey::DescribeTransactions => RequestKind::DescribeTransactions(Default::default()),
        ApiKey::ListTransactions => RequestKind::ListTransactions(Default::default()),
        ApiKey::AllocateProducerIds => RequestKind::AllocateProducerIds(Default::default()),
        ApiKey::ConsumerGroupHeartbeat => RequestKind::ConsumerGroupHeartbeat(Default::default()),
        ApiKey::ConsumerGroupDescribe => RequestKind::ConsumerGroupDescribe(Default::default()),
        ApiKey::ControllerRegistration => RequestKind::ControllerRegistration(Default::default()),
        ApiKey::GetTelemetrySubscriptions => RequestKind::GetTelemetrySubscriptions(Default::default()),
        ApiKey::PushTelemetry => RequestKind::PushTelemetry(Default::default()),
        ApiKey::AssignReplicasToDirs => RequestKind::AssignReplicasToDirs(Default::default()),
        ApiKey::ListConfigResources => RequestKind::ListConfigResources(Default::default()),
        ApiKey::DescribeTopicPartitions => RequestKind::DescribeTopicPartitions(Default::default()),
        ApiKey::ShareGroupHeartbeat => RequestKind::ShareGroupHeartbeat(Default::default()),
        ApiKey::ShareGroupDescribe => RequestKind::ShareGroupDescribe(Default::default()),
        ApiKey::ShareFetch => RequestKind::ShareFetch(Default::default()),
        ApiKey::ShareAcknowledge => RequestKind::ShareAcknowledge(Default::default()),
        ApiKey::AddRaftVoter => RequestKind::AddRaftVoter(Default::default()),
        ApiKey::RemoveRaftVoter => RequestKind::RemoveRaftVoter(Default::default()),
        ApiKey::UpdateRaftVoter => RequestKind::UpdateRaftVoter(Default::default()),
        ApiKey::InitializeShareGroupState => RequestKind::InitializeShareGroupState(Default::default()),
        ApiKey::ReadShareGroupState => RequestKind::ReadShareGroupState(Default::default()),
        ApiKey::WriteShareGroupState => RequestKind::WriteShareGroupState(Default::default()),
        ApiKey::DeleteShareGroupState => RequestKind::DeleteShareGroupState(Default::default()),
        ApiKey::ReadShareGroupStateSummary => RequestKind::ReadShareGroupStateSummary(Default::default()),
        ApiKey::DescribeShareGroupOffsets => RequestKind::DescribeShareGroupOffsets(Default::default()),
        ApiKey::AlterShareGroupOffsets => RequestKind::AlterShareGroupOffsets(Default::default()),
        ApiKey::DeleteShareGroupOffsets => RequestKind::DeleteShareGroupOffsets(Default::default()),
    }
}

/// A response of the kind with every field at its default.
fn default_response(k: ApiKey) -> ResponseKind {
    match k {
        ApiKey::Produce => ResponseKind::Produce(Default::default()),
        ApiKey::Fetch => ResponseKind::Fetch(Default::default()),
        ApiKey::ListOffsets => ResponseKind::ListOffsets(Default::default()),
        ApiKey::Metadata => ResponseKind::Metadata(Default::default()),
        ApiKey::OffsetCommit => ResponseKind::OffsetCommit(Default::default()),
        ApiKey::OffsetFetch => ResponseKind::OffsetFetch(Default::default()),
        ApiKey::FindCoordinator => ResponseKind::FindCoordinator(Default::default()),
        ApiKey::JoinGroup => ResponseKind::JoinGroup(Default::default()),
        ApiKey::Heartbeat => ResponseKind::Heartbeat(Default::default()),
        ApiKey::LeaveGroup => ResponseKind::LeaveGroup(Default::default()),
        ApiKey::SyncGroup => ResponseKind::SyncGroup(Default::default()),
        ApiKey::DescribeGroups => ResponseKind::DescribeGroups(Default::default()),
        ApiKey::ListGroups => ResponseKind::ListGroups(Default::default()),
        ApiKey::SaslHandshake => ResponseKind::SaslHandshake(Default::default()),
        ApiKey::ApiVersions => ResponseKind::ApiVersions(Default::default()),
        ApiKey::CreateTopics => ResponseKind::CreateTopics(Default::default()),
        ApiKey::DeleteTopics => ResponseKind::DeleteTopics(Default::default()),
        ApiKey::DeleteRecords => ResponseKind::DeleteRecords(Default::default()),
        ApiKey::InitProducerId => ResponseKind::InitProducerId(Default::default()),
        ApiKey::OffsetForLeaderEpoch => ResponseKind::OffsetForLeaderEpoch(Default::default()),
        ApiKey::AddPartitionsToTxn => ResponseKind::AddPartitionsToTxn(Default::default()),
        ApiKey::AddOffsetsToTxn => ResponseKind::AddOffsetsToTxn(Default::default()),
        ApiKey::EndTxn => ResponseKind::EndTxn(Default::default()),
        ApiKey::WriteTxnMarkers => ResponseKind::WriteTxnMarkers(Default::default()),
        ApiKey::TxnOffsetCommit => ResponseKind::TxnOffsetCommit(Default::default()),
        ApiKey::DescribeAcls => ResponseKind::DescribeAcls(Default::default()),
        ApiKey::CreateAcls => ResponseKind::CreateAcls(Default::default()),
        ApiKey::DeleteAcls => ResponseKind::DeleteAcls(Default::default()),
        ApiKey::DescribeConfigs => ResponseKind::DescribeConfigs(Default::default()),
        ApiKey::AlterConfigs => ResponseKind::AlterConfigs(Default::default()),
        ApiKey::AlterReplicaLogDirs => ResponseKind::AlterReplicaLogDirs(Default::default()),
        ApiKey::DescribeLogDirs => ResponseKind::DescribeLogDirs(Default::default()),
        ApiKey::SaslAuthenticate => ResponseKind::SaslAuthenticate(Default::default()),
        ApiKey::CreatePartitions => ResponseKind::CreatePartitions(Default::default()),
        ApiKey::CreateDelegationToken => ResponseKind::CreateDelegationToken(Default::default()),
        ApiKey::RenewDelegationToken => ResponseKind::RenewDelegationToken(Default::default()),
        ApiKey::ExpireDelegationToken => ResponseKind::ExpireDelegationToken(Default::default()),
        ApiKey::DescribeDelegationToken => ResponseKind::DescribeDelegationToken(Default::default()),
        ApiKey::DeleteGroups => ResponseKind::DeleteGroups(Default::default()),
        ApiKey::ElectLeaders => ResponseKind::ElectLeaders(Default::default()),
        ApiKey::IncrementalAlterConfigs => ResponseKind::IncrementalAlterConfigs(Default::default()),
        ApiKey::AlterPartitionReassignments => ResponseKind::AlterPartitionReassignments(Default::default()),
        ApiKey::ListPartitionReassignments => ResponseKind::ListPartitionReassignments(Default::default()),
        ApiKey::OffsetDelete => ResponseKind::OffsetDelete(Default::default()),
        ApiKey::DescribeClientQuotas => ResponseKind::DescribeClientQuotas(Default::default()),
        ApiKey::AlterClientQuotas => ResponseKind::AlterClientQuotas(Default::default()),
        ApiKey::DescribeUserScramCredentials => ResponseKind::DescribeUserScramCredentials(Default::default()),
        ApiKey::AlterUserScramCredentials => ResponseKind::AlterUserScramCredentials(Default::default()),
        ApiKey::Vote => ResponseKind::Vote(Default::default()),
        ApiKey::BeginQuorumEpoch => ResponseKind::BeginQuorumEpoch(Default::default()),
        ApiKey::EndQuorumEpoch => ResponseKind::EndQuorumEpoch(Default::default()),
        ApiKey::DescribeQuorum => ResponseKind::DescribeQuorum(Default::default()),
        ApiKey::AlterPartition => ResponseKind::AlterPartition(Default::default()),
        ApiKey::UpdateFeatures => ResponseKind::UpdateFeatures(Default::default()),
        ApiKey::Envelope => ResponseKind::Envelope(Default::default()),
        ApiKey::FetchSnapshot => ResponseKind::FetchSnapshot(Default::default()),
        ApiKey::DescribeCluster => ResponseKind::DescribeCluster(Default::default()),
        ApiKey::DescribeProducers => ResponseKind::DescribeProducers(Default::default()),
        ApiKey::BrokerRegistration => ResponseKind::BrokerRegistration(Default::default()),
        ApiKey::BrokerHeartbeat => ResponseKind::BrokerHeartbeat(Default::default()),
        ApiKey::UnregisterBroker => ResponseKind::UnregisterBroker(Default::default()),
        ApiKey::DescribeTransactions => ResponseKind::DescribeTransactions(Default::default()),
        ApiKey::ListTransactions => ResponseKind::ListTransactions(Default::default()),
        ApiKey::AllocateProducerIds => ResponseKind::AllocateProducerIds(Default::default()),
        ApiKey::ConsumerGroupHeartbeat => ResponseKind::ConsumerGroupHeartbeat(Default::default()),
        ApiKey::ConsumerGroupDescribe => ResponseKind::ConsumerGroupDescribe(Default::default()),
        ApiKey::ControllerRegistration => ResponseKind::ControllerRegistration(Default::default()),
        ApiKey::GetTelemetrySubscriptions => ResponseKind::GetTelemetrySubscriptions(Default::default()),
        ApiKey::PushTelemetry => ResponseKind::PushTelemetry(Default::default()),
        ApiKey::AssignReplicasToDirs => ResponseKind::AssignReplicasToDirs(Default::default()),
        ApiKey::ListConfigResources => ResponseKind::ListConfigResources(Default::default()),
        ApiKey::DescribeTopicPartitions => ResponseKind::DescribeTopicPartitions(Default::default()),
        ApiKey::ShareGroupHeartbeat => ResponseKind::ShareGroupHeartbeat(Default::default()),
        ApiKey::ShareGroupDescribe => ResponseKind::ShareGroupDescribe(Default::default()),
        ApiKey::ShareFetch => ResponseKind::ShareFetch(Default::default()),
        ApiKey::ShareAcknowledge => ResponseKind::ShareAcknowledge(Default::default()),
        ApiKey::AddRaftVoter => ResponseKind::AddRaftVoter(Default::default()),
        ApiKey::RemoveRaftVoter => ResponseKind::RemoveRaftVoter(Default::default()),
        ApiKey::UpdateRaftVoter => ResponseKind::UpdateRaftVoter(Default::default()),
        ApiKey::InitializeShareGroupState => ResponseKind::InitializeShareGroupState(Default::default()),
        ApiKey::ReadShareGroupState => ResponseKind::ReadShareGroupState(Default::default()),
        ApiKey::WriteShareGroupState => ResponseKind::WriteShareGroupState(Default::default()),
        ApiKey::DeleteShareGroupState => ResponseKind::DeleteShareGroupState(Default::default()),
        ApiKey::ReadShareGroupStateSummary => ResponseKind::ReadShareGroupStateSummary(Default::default()),
        ApiKey::DescribeShareGroupOffsets => ResponseKind::DescribeShareGroupOffsets(Default::default()),
        ApiKey::AlterShareGroupOffsets => ResponseKind::AlterShareGroupOffsets(Default::default()),
        ApiKey::DeleteShareGroupOffsets => ResponseKind::DeleteShareGroupOffsets(Default::default()),
    }
}
