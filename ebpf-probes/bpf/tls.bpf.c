/* TLS plaintext: uprobes on OpenSSL's SSL_write, SSL_read, SSL_write_ex and SSL_read_ex.
 *
 * The entry probe remembers the buffer (and, for the _ex forms, where the byte count will be
 * written); the return probe copies what was really sent or received into the `tls_events` ring
 * buffer, in pieces of TLS_CHUNK bytes, at most TLS_MAX_CHUNKS pieces per call (the rest is
 * reported as a gap by user space, from `len`). Only processes whose tgid is in `tls_pids`, or
 * whose cgroup is in `tls_cgroups`, are captured: the probes sit in a shared library that every
 * process on the host may use.
 *
 * The connection's addresses come from the socket the call reads or writes: while a thread is
 * inside SSL_*, its read/write/send/recv syscalls name the fd, which leads through the task's
 * file table to the socket. */
#include "common.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 24);
} tls_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u8);
} tls_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u8);
} tls_cgroups SEC(".maps");

struct call {
	__u64 ssl;
	__u64 buf;
	__u64 count_ptr; /* _ex forms: where the byte count is written; 0 otherwise */
	__u8 dir;
};

/* Threads inside an SSL call, by pid_tgid. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct call);
} active SEC(".maps");

struct addrs {
	__u8 family;
	__u16 sport;
	__u16 dport;
	__u8 saddr[16];
	__u8 daddr[16];
};

/* Connection addresses by SSL pointer, learnt from the syscalls made inside SSL calls. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, __u64);
	__type(value, struct addrs);
} conns SEC(".maps");

/* Scratch space for one event (too big for the BPF stack). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct tls_event);
} scratch SEC(".maps");

static __always_inline int wanted(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_map_lookup_elem(&tls_pids, &tgid))
		return 1;
	__u64 cg = bpf_get_current_cgroup_id();
	return bpf_map_lookup_elem(&tls_cgroups, &cg) != 0;
}

static __always_inline int enter(struct pt_regs *ctx, __u8 dir, int ex)
{
	if (!wanted())
		return 0;
	struct call c = {};
	c.ssl = PT_REGS_PARM1(ctx);
	c.buf = PT_REGS_PARM2(ctx);
	c.count_ptr = ex ? PT_REGS_PARM4(ctx) : 0;
	c.dir = dir;
	__u64 id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&active, &id, &c, BPF_ANY);
	return 0;
}

static __always_inline int leave(struct pt_regs *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&active, &id);
	if (!c)
		return 0;
	struct call call = *c;
	bpf_map_delete_elem(&active, &id);

	long ret = PT_REGS_RC(ctx);
	__u64 len = 0;
	if (call.count_ptr) {
		if (ret != 1)
			return 0;
		bpf_probe_read_user(&len, sizeof(len), (void *)call.count_ptr);
	} else {
		if (ret <= 0)
			return 0;
		len = ret;
	}
	if (len == 0)
		return 0;

	__u32 zero = 0;
	struct tls_event *e = bpf_map_lookup_elem(&scratch, &zero);
	if (!e)
		return 0;
	e->kind = EV_TLS_DATA;
	e->dir = call.dir;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ts_ns = bpf_ktime_get_ns();
	e->conn = call.ssl;
	e->len = len > 0xffffffff ? 0xffffffff : (__u32)len;
	bpf_get_current_comm(&e->comm, sizeof(e->comm));
	struct addrs *a = bpf_map_lookup_elem(&conns, &call.ssl);
	if (a) {
		e->family = a->family;
		e->sport = a->sport;
		e->dport = a->dport;
		__builtin_memcpy(e->saddr, a->saddr, 16);
		__builtin_memcpy(e->daddr, a->daddr, 16);
	} else {
		e->family = 0;
	}
	for (int i = 0; i < TLS_MAX_CHUNKS; i++) {
		__u64 off = (__u64)i * TLS_CHUNK;
		if (off >= len)
			break;
		__u64 n = len - off;
		if (n > TLS_CHUNK)
			n = TLS_CHUNK;
		/* Keep the verifier's bound on n through the helper call. */
		asm volatile("" : "+r"(n));
		if (n > TLS_CHUNK)
			n = TLS_CHUNK;
		e->offset = off;
		e->captured = n;
		if (bpf_probe_read_user(e->data, n, (void *)(call.buf + off)) != 0)
			break;
		if (bpf_ringbuf_output(&tls_events, e, sizeof(*e) - TLS_CHUNK + n, 0) != 0) {
			__u32 k = CNT_RING_FULL;
			__u64 *cnt = bpf_map_lookup_elem(&tls_counters, &k);
			if (cnt)
				*cnt += 1;
			break;
		}
	}
	return 0;
}

SEC("uprobe/SSL_write")
int BPF_KPROBE(ssl_write_enter) { return enter(ctx, 0, 0); }
SEC("uretprobe/SSL_write")
int BPF_KRETPROBE(ssl_write_leave) { return leave(ctx); }
SEC("uprobe/SSL_read")
int BPF_KPROBE(ssl_read_enter) { return enter(ctx, 1, 0); }
SEC("uretprobe/SSL_read")
int BPF_KRETPROBE(ssl_read_leave) { return leave(ctx); }
SEC("uprobe/SSL_write_ex")
int BPF_KPROBE(ssl_write_ex_enter) { return enter(ctx, 0, 1); }
SEC("uretprobe/SSL_write_ex")
int BPF_KRETPROBE(ssl_write_ex_leave) { return leave(ctx); }
SEC("uprobe/SSL_read_ex")
int BPF_KPROBE(ssl_read_ex_enter) { return enter(ctx, 1, 1); }
SEC("uretprobe/SSL_read_ex")
int BPF_KRETPROBE(ssl_read_ex_leave) { return leave(ctx); }

/* A syscall on fd `fd` by a thread inside an SSL call: remember the socket's addresses. */
static __always_inline int learn_fd(unsigned long fd)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&active, &id);
	if (!c)
		return 0;
	__u64 ssl = c->ssl;
	if (bpf_map_lookup_elem(&conns, &ssl))
		return 0;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt)
		return 0;
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	if (fd >= max)
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	if (!f)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return 0;
	struct sock *sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return 0;
	struct addrs a = {};
	unsigned short family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == AF_INET) {
		a.family = 4;
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);
		__builtin_memcpy(a.saddr, &s, 4);
		__builtin_memcpy(a.daddr, &d, 4);
	} else if (family == AF_INET6) {
		a.family = 6;
		bpf_probe_read_kernel(a.saddr, 16, &sk->__sk_common.skc_v6_rcv_saddr);
		bpf_probe_read_kernel(a.daddr, 16, &sk->__sk_common.skc_v6_daddr);
	} else {
		return 0;
	}
	a.sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	a.dport = __builtin_bswap16(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (a.sport == 0 || a.dport == 0)
		return 0;
	bpf_map_update_elem(&conns, &ssl, &a, BPF_ANY);
	return 0;
}

#define FD_SYSCALL(name)                                                                          \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                               \
	int sys_enter_##name(struct wl_sys_enter *ctx)                               \
	{                                                                                         \
		unsigned long fd = 0;                                                             \
		bpf_probe_read_kernel(&fd, sizeof(fd), &ctx->args[0]);                            \
		return learn_fd(fd);                                                              \
	}

FD_SYSCALL(write)
FD_SYSCALL(read)
FD_SYSCALL(writev)
FD_SYSCALL(readv)
FD_SYSCALL(sendto)
FD_SYSCALL(recvfrom)
FD_SYSCALL(sendmsg)
FD_SYSCALL(recvmsg)
