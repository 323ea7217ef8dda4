/* TCP probes: handshake RTT (sock:inet_sock_set_state), retransmissions (tcp:tcp_retransmit_skb)
 * and RTT/congestion-window samples (tp_btf/tcp_probe). Every event goes to the `tcp_events` ring
 * buffer; an event that does not fit is counted in `counters[CNT_RING_FULL]`. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

#define TCP_ESTABLISHED 1
#define TCP_SYN_SENT 2
#define TCP_CLOSE 7
#define IPPROTO_TCP 6

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} tcp_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct syn_sent {
	__u64 ts_ns;
	__u32 pid;
	char comm[16];
};

/* Sockets in SYN_SENT, by socket address: when connect() started and who called it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct syn_sent);
} connecting SEC(".maps");

/* Last tcp_probe sample per socket: samples are rate-limited to one per socket per interval. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, __u64);
} last_probe SEC(".maps");

/* Set by user space before loading: nanoseconds between two tcp_probe samples of one socket. */
const volatile __u64 probe_interval_ns = 100000000;

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);
	if (c)
		*c += 1;
}

static __always_inline struct tcp_event *reserve(void)
{
	struct tcp_event *e = bpf_ringbuf_reserve(&tcp_events, sizeof(*e), 0);
	if (!e) {
		count(CNT_RING_FULL);
		return 0;
	}
	__builtin_memset(e, 0, sizeof(*e));
	e->ts_ns = bpf_ktime_get_ns();
	return e;
}

SEC("tracepoint/sock/inet_sock_set_state")
int inet_sock_set_state(struct wl_inet_sock_set_state *ctx)
{
	__u16 protocol = 0;
	int oldstate = 0, newstate = 0;
	const void *skaddr = 0;
	bpf_probe_read_kernel(&protocol, sizeof(protocol), &ctx->protocol);
	if (protocol != IPPROTO_TCP)
		return 0;
	bpf_probe_read_kernel(&oldstate, sizeof(oldstate), &ctx->oldstate);
	bpf_probe_read_kernel(&newstate, sizeof(newstate), &ctx->newstate);
	bpf_probe_read_kernel(&skaddr, sizeof(skaddr), &ctx->skaddr);
	__u64 key = (__u64)skaddr;

	/* A socket that starts or ends a connection may sit at the address of one freed moments
	 * ago: its first tcp_probe sample must not be rate-limited by the old one's. */
	if (newstate == TCP_SYN_SENT || newstate == TCP_ESTABLISHED || newstate == TCP_CLOSE)
		bpf_map_delete_elem(&last_probe, &key);

	if (newstate == TCP_SYN_SENT) {
		struct syn_sent s = {};
		s.ts_ns = bpf_ktime_get_ns();
		s.pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(&s.comm, sizeof(s.comm));
		bpf_map_update_elem(&connecting, &key, &s, BPF_ANY);
		return 0;
	}
	if (oldstate != TCP_SYN_SENT)
		return 0;
	struct syn_sent *s = bpf_map_lookup_elem(&connecting, &key);
	if (!s)
		return 0;
	if (newstate == TCP_ESTABLISHED) {
		struct tcp_event *e = reserve();
		if (e) {
			e->kind = EV_HANDSHAKE;
			e->value1 = e->ts_ns - s->ts_ns;
			e->pid = s->pid;
			__builtin_memcpy(e->comm, s->comm, sizeof(e->comm));
			__u16 family = 0;
			bpf_probe_read_kernel(&family, sizeof(family), &ctx->family);
			bpf_probe_read_kernel(&e->sport, sizeof(e->sport), &ctx->sport);
			bpf_probe_read_kernel(&e->dport, sizeof(e->dport), &ctx->dport);
			if (family == AF_INET) {
				e->family = 4;
				bpf_probe_read_kernel(e->saddr, 4, ctx->saddr);
				bpf_probe_read_kernel(e->daddr, 4, ctx->daddr);
			} else {
				e->family = 6;
				bpf_probe_read_kernel(e->saddr, 16, ctx->saddr_v6);
				bpf_probe_read_kernel(e->daddr, 16, ctx->daddr_v6);
			}
			bpf_ringbuf_submit(e, 0);
		}
	}
	bpf_map_delete_elem(&connecting, &key);
	return 0;
}

SEC("tracepoint/tcp/tcp_retransmit_skb")
int tcp_retransmit_skb(struct wl_tcp_retransmit_skb *ctx)
{
	struct tcp_event *e = reserve();
	if (!e)
		return 0;
	e->kind = EV_RETRANSMIT;
	__u16 family = 0;
	bpf_probe_read_kernel(&family, sizeof(family), &ctx->family);
	bpf_probe_read_kernel(&e->sport, sizeof(e->sport), &ctx->sport);
	bpf_probe_read_kernel(&e->dport, sizeof(e->dport), &ctx->dport);
	bpf_probe_read_kernel(&e->value3, sizeof(e->value3), &ctx->state);
	if (family == AF_INET) {
		e->family = 4;
		bpf_probe_read_kernel(e->saddr, 4, ctx->saddr);
		bpf_probe_read_kernel(e->daddr, 4, ctx->daddr);
	} else {
		e->family = 6;
		bpf_probe_read_kernel(e->saddr, 16, ctx->saddr_v6);
		bpf_probe_read_kernel(e->daddr, 16, ctx->daddr_v6);
	}
	/* tcp_skb_cb at the start of skb->cb: seq, end_seq, then tcp_gso_segs (u16). */
	const struct sk_buff *skb = 0;
	bpf_probe_read_kernel(&skb, sizeof(skb), &ctx->skbaddr);
	if (skb) {
		__u32 seq = 0, end_seq = 0;
		__u16 segs = 0;
		bpf_probe_read_kernel(&seq, 4, &skb->cb[0]);
		bpf_probe_read_kernel(&end_seq, 4, &skb->cb[4]);
		bpf_probe_read_kernel(&segs, 2, &skb->cb[8]);
		e->value1 = ((__u64)seq << 32) | end_seq;
		e->value2 = segs ? segs : 1;
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp_btf/tcp_probe")
int BPF_PROG(tcp_probe, struct sock *sk, struct sk_buff *skb)
{
	__u64 key = (__u64)sk;
	__u64 now = bpf_ktime_get_ns();
	__u64 *last = bpf_map_lookup_elem(&last_probe, &key);
	if (last && now - *last < probe_interval_ns)
		return 0;
	bpf_map_update_elem(&last_probe, &key, &now, BPF_ANY);

	struct tcp_sock *tp = bpf_skc_to_tcp_sock(sk);
	if (!tp)
		return 0;
	struct tcp_event *e = reserve();
	if (!e)
		return 0;
	e->kind = EV_TCP_PROBE;
	e->value1 = tp->srtt_us >> 3;
	e->value2 = tp->snd_cwnd;
	e->value3 = tp->mdev_us >> 2;
	e->value4 = tp->total_retrans;
	__u16 family = sk->__sk_common.skc_family;
	e->sport = sk->__sk_common.skc_num;
	e->dport = __builtin_bswap16(sk->__sk_common.skc_dport);
	if (family == AF_INET) {
		e->family = 4;
		__be32 s = sk->__sk_common.skc_rcv_saddr, d = sk->__sk_common.skc_daddr;
		__builtin_memcpy(e->saddr, &s, 4);
		__builtin_memcpy(e->daddr, &d, 4);
	} else {
		e->family = 6;
		bpf_probe_read_kernel(e->saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(e->daddr, 16, &sk->__sk_common.skc_v6_daddr);
	}
	bpf_ringbuf_submit(e, 0);
	return 0;
}
