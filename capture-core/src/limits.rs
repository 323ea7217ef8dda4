//! Every cap the engine enforces, in one value passed down from the top (never a global).
//!
//! Each field says why it has its default. Hitting a cap is counted in [`crate::stats::Stats`]
//! and shown by `capture_status` and in every result's coverage; it never panics or grows memory.

/// The engine's caps. Build with `Limits::default()` and override fields as needed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Largest capture record accepted from a file. Snap lengths are at most 262,144 bytes in
    /// libpcap; 16 MiB leaves room for odd tools and still refuses absurd length fields.
    pub max_record_bytes: usize,
    /// IP datagrams being reassembled at once. Fragmentation is rare on modern networks; 4,096
    /// in flight covers bursts and stops fragment floods.
    pub ip_frag_max_datagrams: usize,
    /// Bytes held by IP reassembly in total (64 full-size datagrams).
    pub ip_frag_max_bytes: usize,
    /// A fragmented datagram that does not complete in this time is dropped (Linux uses 30 s).
    pub ip_frag_timeout_us: u64,
    /// Flows tracked at once. About 500 bytes each, so the default holds ~128 MiB at worst.
    pub max_flows: usize,
    /// Finished flows kept for `tcp_insights` and `list_flows` (about 600 bytes each).
    pub max_flow_records: usize,
    /// A TCP flow with no packet for this long is evicted (an idle keep-alive connection is
    /// picked up again mid-stream if it resumes).
    pub tcp_idle_timeout_us: u64,
    /// A TCP flow closed by FIN or RST is kept this long for late ACKs and retransmissions.
    pub tcp_closed_linger_us: u64,
    /// A UDP flow with no packet for this long is evicted.
    pub udp_idle_timeout_us: u64,
    /// Out-of-order bytes buffered per direction while waiting for a missing segment. Beyond it
    /// the hole is declared a gap. 1 MiB covers a typical receive window.
    pub reassembly_window_bytes: usize,
    /// Out-of-order segments buffered per direction (holes in the assembler).
    pub reassembly_max_segments: usize,
    /// Unparsed bytes a dissector may hold per direction (an incomplete header block or chunk
    /// line). Beyond it the parser re-synchronises.
    pub dissector_buffer_bytes: usize,
    /// Largest HTTP/1 header block. Servers refuse at 8–64 KiB (nginx 8 KiB, Node 16 KiB).
    pub http_max_header_bytes: usize,
    /// Most headers in one HTTP/1 message (httparse needs a fixed array).
    pub http_max_headers: usize,
    /// Requests awaiting a response on one connection (pipelining depth). Browsers pipeline a
    /// handful; 64 absorbs floods without unbounded queues.
    pub http_max_pending: usize,
    /// Body bytes kept per message; the rest is counted, not kept (`truncated`).
    pub body_capture_bytes: usize,
    /// Output cap when decoding gzip/deflate/br on request: stops decompression bombs.
    pub decompress_max_bytes: usize,
    /// Memory budget of the entry store, payloads included (`--store-memory`).
    pub store_memory_bytes: usize,
    /// Global memory budget (`--max-memory`; 0: none): lowers the store, flow and flow-record
    /// caps to fit, and makes the engine shed load when the resident set nears it
    /// ([`crate::memory`]).
    pub max_memory_bytes: usize,
    /// HTTP/2 streams tracked at once per connection; the oldest is emitted early beyond it
    /// (`h2_stream_overflows`). Servers allow 100–250 concurrent streams (nginx 128, Go 250).
    pub h2_max_streams: usize,
    /// Largest decoded HTTP/2 header list kept (RFC 9113 size: name + value + 32 per field);
    /// the rest is decoded for HPACK but not kept (`h2_header_lists_too_large`). As HTTP/1.
    pub h2_max_header_list_bytes: usize,
    /// CONTINUATION frames of one header block before its fields stop being kept
    /// (`h2_continuation_overflows`); real blocks need a handful, floods send thousands.
    pub h2_max_continuations: usize,
    /// HPACK dynamic-table bytes kept per direction. Peers use 4 KiB (the default) to 64 KiB;
    /// beyond it entries are dropped and references to them decode as unknown
    /// (`h2_hpack_table_capped`).
    pub h2_hpack_table_bytes: usize,
    /// DATA bytes kept per stream and direction (the size stays exact). Lower than it could be
    /// for HTTP/1 because `h2_max_streams` bodies may be in flight on one connection.
    pub h2_stream_body_bytes: usize,
    /// Nesting depth to which schemaless protobuf decoding tries length-delimited fields as
    /// messages; deeper ones are shown as text or bytes.
    pub protobuf_max_depth: usize,
    /// Deepest RESP aggregate nesting followed (`redis_depth_exceeded`). Redis replies nest a
    /// handful of levels (COMMAND DOCS about seven); the decoder keeps one small frame per level
    /// and never recurses, so 64 is generous and still bounded.
    pub redis_max_depth: usize,
    /// Largest declared RESP aggregate length accepted; Redis refuses more itself ("invalid
    /// multibulk length"). Declared lengths are counted down, never allocated.
    pub redis_max_aggregate_len: u64,
    /// Largest declared bulk string accepted: Redis' default `proto-max-bulk-len` (512 MB).
    /// Payloads stream through the decoder; only `redis_value_bytes` of each is kept.
    pub redis_max_bulk_len: u64,
    /// Longest RESP line (simple string, error, inline command): Redis' own inline limit.
    pub redis_max_line_bytes: usize,
    /// Bytes kept of each command argument and reply value (`redis_values_truncated`).
    pub redis_value_bytes: usize,
    /// Bytes kept of a command's name and first argument (the key): keys are filtered and
    /// grouped on, so they are kept whole up to this size.
    pub redis_key_bytes: usize,
    /// Command arguments (and direct reply elements) kept per entry; the count stays exact.
    pub redis_max_args: usize,
    /// Commands awaiting a reply on one connection (pipelining depth); beyond it the oldest is
    /// emitted without its reply (`redis_pipeline_overflows`). Pipelining clients send hundreds.
    pub redis_max_pending: usize,
    /// Compression pointers followed in one DNS name before it is declared a loop
    /// (`dns_pointer_loops`). A name has at most 127 labels, so honest names need fewer.
    pub dns_max_pointer_hops: usize,
    /// Questions kept per DNS message (one in practice).
    pub dns_max_questions: usize,
    /// Answer records kept per DNS message (`dns_records_capped`); ANCOUNT stays exact.
    pub dns_max_records: usize,
    /// Unanswered DNS queries tracked per flow (`dns_pending_overflows`).
    pub dns_max_pending: usize,
    /// Addresses whose DNS name is remembered from A/AAAA answers seen in the traffic (for
    /// `src.dns`, `dst.dns`); the oldest are forgotten first (`dns_names_forgotten`). 64 Ki
    /// names of ~60 bytes is ~8 MiB.
    pub dns_names_max: usize,
    /// A DNS query unanswered for this long is an entry without a response. Resolvers give up
    /// after 5–10 s; 30 s leaves room for slow upstreams.
    pub dns_query_timeout_us: u64,
    /// A query repeated (same id and question) sooner than this is a retransmission of the first
    /// and the response is paired with the first; later, it is a new attempt. tshark's default.
    pub dns_retransmit_window_us: u64,
    /// A tool call that scans longer than this stops with an error that says so
    /// (`--tool-timeout`); the agent narrows its filter or time window. Calls that wait
    /// (`watch_entries`, the sources still loading) are not counted.
    pub tool_timeout_ms: u64,
    /// Kafka requests awaiting their response per connection; the oldest is then emitted without
    /// one (`kafka_pending_overflows`). Clients pipeline a few per broker connection.
    pub kafka_max_pending: usize,
    /// Topics, partitions and error codes kept per Kafka entry, each (`kafka_lists_capped`).
    /// A Fetch or Produce names a handful; a consumer's first Metadata may name hundreds of topics.
    pub kafka_max_list: usize,
    /// Kafka records kept per entry with key, value and headers (`kafka_records_not_kept`); all
    /// are still counted. A few show what a batch holds without keeping every message.
    pub kafka_max_records: usize,
    /// Bytes kept of each Kafka record key, value and header value; longer ones are marked cut.
    pub kafka_value_bytes: usize,
    /// Headers kept per Kafka record.
    pub kafka_max_headers: usize,
    /// Bytes one compressed Kafka batch may decompress into (`kafka_decompress_capped`); past
    /// it, the batch's records are not read further. Producers' batches default to 16 KiB-1 MiB.
    pub kafka_decompress_max_bytes: usize,
    /// Window a zstd-compressed Kafka batch may ask for (refused beyond, as corrupt). Producers
    /// compress batches of at most a few MiB, whose windows are no larger.
    pub kafka_zstd_max_window_bytes: usize,
    /// AMQP entries open per connection (synchronous methods awaiting a reply, content being
    /// assembled); the oldest is then emitted as it is (`amqp_open_overflows`).
    pub amqp_max_open: usize,
    /// Bytes of an AMQP message body kept per entry (the body frames concatenated); the rest is
    /// counted in the size only (`amqp_bodies_truncated`). 4 KiB shows a JSON or text message
    /// whole in most systems and bounds 1,024 open entries to 4 MiB per connection.
    pub amqp_body_max_bytes: usize,
    /// Nesting depth of AMQP field tables and arrays decoded (message headers, connection
    /// properties); deeper values are left out (`amqp_tables_cut`). Real headers nest 1–3 deep
    /// (RabbitMQ's `x-death`); the cap also bounds the decoder's recursion.
    pub amqp_table_max_depth: usize,
    /// Values decoded per AMQP field table, nested ones included; the rest is left out
    /// (`amqp_tables_cut`). Brokers' and clients' tables hold a few dozen.
    pub amqp_table_max_items: usize,
    /// Bytes kept of each string or byte-array value in an AMQP field table; longer values are
    /// cut (`amqp_tables_cut`). Together with the item cap it bounds a table to 16 KiB.
    pub amqp_table_value_max_bytes: usize,
    /// Connections whose kernel facts (eBPF: handshake RTT, retransmits, srtt/cwnd) wait for
    /// their flow; more are counted in `ebpf_connections_dropped`. One per open connection.
    pub ebpf_max_connections: usize,
    /// TLS with a key log: protected bytes per connection held while its secrets are not in
    /// the key log yet (a live client appends them as it connects); beyond it they are read as
    /// undecryptable.
    pub tls_key_wait_bytes: usize,
    /// Live capture: open flows listed by the flow tools, the most recently active first
    /// (refreshed every second); the rest are counted in `flows_open_unlisted`.
    pub live_flows_listed: usize,
    /// TLS plaintext streams followed at once (one per SSL connection of the chosen processes);
    /// more are counted in `tls_connections_dropped`.
    pub tls_max_connections: usize,
    /// Bytes of one TLS handshake message read in clear (a Certificate message holds the whole
    /// chain: 3–6 KiB usually, rarely above 16 KiB); a larger message stops the handshake
    /// reading of that direction (`tls_handshake_errors`). Also the most held per direction.
    pub tls_max_handshake_bytes: usize,
    /// ALPN protocols offered, subjectAltNames and alerts kept per `tls` entry (the alert count
    /// stays exact). Browsers offer 2–3 protocols; certificates with hundreds of names exist.
    pub tls_max_list: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 16 << 20,
            ip_frag_max_datagrams: 4_096,
            ip_frag_max_bytes: 64 * 65_535,
            ip_frag_timeout_us: 30_000_000,
            max_flows: 262_144,
            max_flow_records: 200_000,
            tcp_idle_timeout_us: 300_000_000,
            tcp_closed_linger_us: 10_000_000,
            udp_idle_timeout_us: 60_000_000,
            reassembly_window_bytes: 1 << 20,
            reassembly_max_segments: 1_024,
            dissector_buffer_bytes: 256 << 10,
            http_max_header_bytes: 64 << 10,
            http_max_headers: 128,
            http_max_pending: 64,
            body_capture_bytes: 64 << 10,
            decompress_max_bytes: 16 << 20,
            store_memory_bytes: 256 << 20,
            max_memory_bytes: 0,
            h2_max_streams: 256,
            h2_max_header_list_bytes: 64 << 10,
            h2_max_continuations: 64,
            h2_hpack_table_bytes: 64 << 10,
            h2_stream_body_bytes: 64 << 10,
            protobuf_max_depth: 32,
            redis_max_depth: 64,
            redis_max_aggregate_len: i32::MAX as u64,
            redis_max_bulk_len: 512 << 20,
            redis_max_line_bytes: 64 << 10,
            redis_value_bytes: 128,
            redis_key_bytes: 1_024,
            redis_max_args: 32,
            redis_max_pending: 1_024,
            dns_max_pointer_hops: 128,
            dns_max_questions: 8,
            dns_max_records: 64,
            dns_max_pending: 1_024,
            dns_names_max: 65_536,
            dns_query_timeout_us: 30_000_000,
            dns_retransmit_window_us: 5_000_000,
            tool_timeout_ms: 60_000,
            kafka_max_pending: 1_024,
            kafka_max_list: 256,
            kafka_max_records: 16,
            kafka_value_bytes: 256,
            kafka_max_headers: 16,
            kafka_decompress_max_bytes: 4 << 20,
            kafka_zstd_max_window_bytes: 8 << 20,
            amqp_max_open: 1_024,
            amqp_body_max_bytes: 4 << 10,
            amqp_table_max_depth: 4,
            ebpf_max_connections: 65_536,
            tls_max_connections: 4_096,
            live_flows_listed: 20_000,
            tls_key_wait_bytes: 256 << 10,
            tls_max_handshake_bytes: 64 << 10,
            tls_max_list: 16,
            amqp_table_max_items: 64,
            amqp_table_value_max_bytes: 256,
        }
    }
}

/// Parses a size such as `64MiB`, `2GiB`, `512MB`, `10k` or a plain number of bytes.
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| {
        format!("`{s}` is not a size: expected a number with an optional unit, e.g. 64MiB, 2GiB, 512MB")
    })?;
    let mult: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" => 1e12,
        "tib" => 1024f64.powi(4),
        other => {
            return Err(format!(
                "`{s}`: unknown size unit `{other}` (use B, KB, KiB, MB, MiB, GB, GiB)"
            ));
        }
    };
    let bytes = value * mult;
    if !bytes.is_finite() || bytes < 0.0 || bytes > usize::MAX as f64 {
        return Err(format!("`{s}` is out of range"));
    }
    Ok(bytes as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB").unwrap(), 64 << 20);
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("512MB").unwrap(), 512_000_000);
        assert_eq!(parse_size("1000").unwrap(), 1000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").unwrap_err().contains("unknown size unit"));
    }
}
