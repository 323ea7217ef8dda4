/* Shared by the probes: the few kernel types they read, declared for CO-RE
 * (preserve_access_index: field offsets are relocated against the running kernel's BTF at load
 * time, so no generated vmlinux.h is needed), and the event layouts user space parses
 * (ebpf-probes/src/events.rs mirrors them byte for byte). */
#ifndef WIRELENS_COMMON_H
#define WIRELENS_COMMON_H

/* bpf_tracing.h picks the kernel's pt_regs field names (di, si, ...) when this is defined. */
#define __VMLINUX_H__ 1

#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#define AF_INET 2
#define AF_INET6 10

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct pt_regs {
	unsigned long r15, r14, r13, r12, bp, bx, r11, r10, r9, r8, ax, cx, dx, si, di, orig_ax, ip,
		cs, flags, sp, ss;
};

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
};

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
};

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
	__u16 sk_type;
};

struct tcp_sock {
	__u32 srtt_us;
	__u32 mdev_us;
	__u32 snd_cwnd;
	__u32 snd_wnd;
	__u32 total_retrans;
	__u32 packets_out;
};

struct sk_buff {
	char cb[48];
};

struct socket {
	struct sock *sk;
};

struct file {
	void *private_data;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
};

struct files_struct {
	struct fdtable *fdt;
};

struct task_struct {
	struct files_struct *files;
};

#pragma clang attribute pop

/* Tracepoint records, at the offsets of their `format` files under tracefs. These are read at
 * fixed offsets, not through CO-RE: the kernel renames their record types between versions
 * (tcp_event_sk_skb became tcp_retransmit_skb) while keeping these fields where they were. */
struct wl_inet_sock_set_state {
	__u64 common; /* struct trace_entry */
	const void *skaddr;
	int oldstate;
	int newstate;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u16 protocol;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

struct wl_tcp_retransmit_skb {
	__u64 common; /* struct trace_entry */
	const void *skbaddr;
	const void *skaddr;
	int state;
	__u16 sport;
	__u16 dport;
	__u16 family;
	__u8 saddr[4];
	__u8 daddr[4];
	__u8 saddr_v6[16];
	__u8 daddr_v6[16];
};

struct wl_sys_enter {
	__u64 common; /* struct trace_entry */
	long id;
	unsigned long args[6];
};

/* Event kinds (the first byte of every event). */
#define EV_HANDSHAKE 1
#define EV_RETRANSMIT 2
#define EV_TCP_PROBE 3
#define EV_TLS_DATA 4

/* A TCP socket seen by the kernel: addresses are the socket's local (s) and remote (d) ends,
 * ports in host order. 88 bytes. */
struct tcp_event {
	__u8 kind;
	__u8 family;
	__u16 sport;
	__u16 dport;
	__u16 pad;
	__u32 pid;
	__u32 value2; /* retransmit: segments in the skb; probe: snd_cwnd (segments) */
	__u64 ts_ns;  /* CLOCK_MONOTONIC */
	__u64 value1; /* handshake: SYN_SENT→ESTABLISHED ns; retransmit: seq<<32|end_seq; probe: srtt µs */
	__u32 value3; /* retransmit: the socket state; probe: mdev µs */
	__u32 value4; /* probe: total retransmits of the socket */
	__u8 saddr[16];
	__u8 daddr[16];
	char comm[16];
};

/* Plaintext of one SSL_read/SSL_write (or a piece of a large one). The header is 96 bytes,
 * then `captured` bytes of data. */
#define TLS_CHUNK 16384
#define TLS_MAX_CHUNKS 8
struct tls_event {
	__u8 kind;
	__u8 family; /* 0 when the connection's addresses are not known yet */
	__u16 sport;
	__u16 dport;
	__u8 dir; /* 0 SSL_write (sent), 1 SSL_read (received) */
	__u8 pad;
	__u32 pid;
	__u32 tid;
	__u64 ts_ns;
	__u64 conn; /* the SSL pointer: one TLS connection in one process */
	__u32 len;      /* bytes of the whole call */
	__u32 offset;   /* where this piece starts in the call */
	__u32 captured; /* bytes of data that follow */
	__u32 pad2;
	char comm[16];
	__u8 saddr[16];
	__u8 daddr[16];
	__u8 data[TLS_CHUNK];
};

_Static_assert(sizeof(struct tcp_event) == 88, "tcp_event layout");
_Static_assert(sizeof(struct tls_event) == 96 + TLS_CHUNK, "tls_event layout");

/* Counters user space reads: [0] events lost because the ring buffer was full. */
#define CNT_RING_FULL 0
#define CNT_MAX 4

#endif
