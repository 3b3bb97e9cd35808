//! The error codes an answer carries, for the errors-by-code metric: the
//! top-level code and every per-topic, per-partition or per-resource code.

use kafka_protocol::messages::ResponseKind;

/// Calls `seen` with every non-zero error code in `body`.
pub fn visit(body: &ResponseKind, mut seen: impl FnMut(i16)) {
    let mut codes = Vec::new();
    collect(body, &mut codes);
    for code in codes.into_iter().filter(|c| *c != 0) {
        seen(code);
    }
}

fn collect(body: &ResponseKind, out: &mut Vec<i16>) {
    match body {
        ResponseKind::Produce(r) => out.extend(
            r.responses
                .iter()
                .flat_map(|t| t.partition_responses.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Fetch(r) => {
            out.push(r.error_code);
            out.extend(
                r.responses
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
        }
        ResponseKind::ListOffsets(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::Metadata(r) => {
            out.push(r.error_code);
            for t in &r.topics {
                out.push(t.error_code);
                out.extend(t.partitions.iter().map(|p| p.error_code));
            }
        }
        ResponseKind::ApiVersions(r) => out.push(r.error_code),
        ResponseKind::CreateTopics(r) => out.extend(r.topics.iter().map(|t| t.error_code)),
        ResponseKind::DeleteTopics(r) => out.extend(r.responses.iter().map(|t| t.error_code)),
        ResponseKind::DeleteRecords(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::DescribeConfigs(r) => out.extend(r.results.iter().map(|c| c.error_code)),
        ResponseKind::AlterConfigs(r) => out.extend(r.responses.iter().map(|c| c.error_code)),
        ResponseKind::IncrementalAlterConfigs(r) => {
            out.extend(r.responses.iter().map(|c| c.error_code));
        }
        ResponseKind::CreatePartitions(r) => out.extend(r.results.iter().map(|t| t.error_code)),
        ResponseKind::DescribeCluster(r) => out.push(r.error_code),
        ResponseKind::FindCoordinator(r) => {
            out.push(r.error_code);
            out.extend(r.coordinators.iter().map(|c| c.error_code));
        }
        ResponseKind::JoinGroup(r) => out.push(r.error_code),
        ResponseKind::SyncGroup(r) => out.push(r.error_code),
        ResponseKind::Heartbeat(r) => out.push(r.error_code),
        ResponseKind::LeaveGroup(r) => {
            out.push(r.error_code);
            out.extend(r.members.iter().map(|m| m.error_code));
        }
        ResponseKind::OffsetCommit(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::OffsetFetch(r) => {
            out.push(r.error_code);
            out.extend(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
            for g in &r.groups {
                out.push(g.error_code);
                out.extend(
                    g.topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
                );
            }
        }
        ResponseKind::ListGroups(r) => out.push(r.error_code),
        ResponseKind::DescribeGroups(r) => out.extend(r.groups.iter().map(|g| g.error_code)),
        ResponseKind::DeleteGroups(r) => out.extend(r.results.iter().map(|g| g.error_code)),
        ResponseKind::OffsetDelete(r) => {
            out.push(r.error_code);
            out.extend(
                r.topics
                    .iter()
                    .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
            );
        }
        ResponseKind::InitProducerId(r) => out.push(r.error_code),
        ResponseKind::AddPartitionsToTxn(r) => {
            out.push(r.error_code);
            let topics = r.results_by_topic_v3_and_below.iter().chain(
                r.results_by_transaction
                    .iter()
                    .flat_map(|t| &t.topic_results),
            );
            out.extend(topics.flat_map(|t| {
                t.results_by_partition
                    .iter()
                    .map(|p| p.partition_error_code)
            }));
        }
        ResponseKind::AddOffsetsToTxn(r) => out.push(r.error_code),
        ResponseKind::TxnOffsetCommit(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::EndTxn(r) => out.push(r.error_code),
        ResponseKind::DescribeLogDirs(r) => {
            out.push(r.error_code);
            out.extend(r.results.iter().map(|d| d.error_code));
        }
        ResponseKind::DescribeTopicPartitions(r) => {
            for t in &r.topics {
                out.push(t.error_code);
                out.extend(t.partitions.iter().map(|p| p.error_code));
            }
        }
        ResponseKind::ListConfigResources(r) => out.push(r.error_code),
        ResponseKind::OffsetForLeaderEpoch(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::DescribeProducers(r) => out.extend(
            r.topics
                .iter()
                .flat_map(|t| t.partitions.iter().map(|p| p.error_code)),
        ),
        ResponseKind::DescribeTransactions(r) => {
            out.extend(r.transaction_states.iter().map(|t| t.error_code));
        }
        ResponseKind::ListTransactions(r) => out.push(r.error_code),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_response::{
        PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::messages::ProduceResponse;

    #[test]
    fn partition_codes_are_visited_and_zero_is_skipped() {
        let partitions = vec![
            PartitionProduceResponse::default().with_error_code(3),
            PartitionProduceResponse::default(),
            PartitionProduceResponse::default().with_error_code(10),
        ];
        let body = ResponseKind::Produce(ProduceResponse::default().with_responses(vec![
            TopicProduceResponse::default().with_partition_responses(partitions),
        ]));
        let mut seen = Vec::new();
        visit(&body, |c| seen.push(c));
        assert_eq!(seen, vec![3, 10]);
    }
}
