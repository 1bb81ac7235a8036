// SPDX-License-Identifier: GPL-2.0
/*
 * kbdtool: a tiny guest program for the VM tests of /dev/kbd0001.
 *
 * The guest has only busybox, which cannot open a file with O_NONBLOCK,
 * read with a chosen buffer size and name the errno. This program is
 * freestanding (no libc: raw x86-64 system calls), a few kilobytes, built
 * on the host by vm-tests (src/guest_tool.rs) and copied into the guest
 * through the command channel.
 *
 *   kbdtool session DEV [nonblock] STEP...
 *       opens DEV once (O_RDONLY, O_NONBLOCK with "nonblock"), prints
 *       "@@open ok" (or "@@open error NAME" and exits 1), then runs each
 *       STEP in order:
 *         N            one read() of N bytes; prints "@@read N data K"
 *                      followed by the K bytes read, or "@@read N eof", or
 *                      "@@read N error NAME"
 *         wait:PATH    waits (polling every 10 ms, at most 60 s) until PATH
 *                      exists; prints "@@wait ok" or "@@wait timeout"
 *       and prints "@@done". Every "@@" line ends with a newline.
 *
 *   kbdtool relay DEV OUT [kmsg]
 *       reads DEV (64 KiB reads) until EOF or an error; with "kmsg" it
 *       first writes every line read to /dev/kmsg as a KERN_DEBUG record
 *       "kbdtool: read <line>" (its printk time stamp is on the clock of
 *       the driver's own log lines, and KERN_DEBUG keeps it off the
 *       console), then each read's bytes to OUT at once (for the benchmark:
 *       a serial port the host reads). Prints "@@open ok" once both are
 *       open and "@@relay end eof|NAME" at the end.
 */

#define SYS_read		0
#define SYS_write		1
#define SYS_open		2
#define SYS_close		3
#define SYS_nanosleep		35
#define SYS_exit_group		231
#define SYS_faccessat		269

#define O_RDONLY		00
#define O_WRONLY		01
#define O_NONBLOCK		04000
#define AT_FDCWD		-100

typedef unsigned long size_t;

static long sys3(long n, long a, long b, long c)
{
	long ret;

	__asm__ volatile ("syscall"
			  : "=a" (ret)
			  : "a" (n), "D" (a), "S" (b), "d" (c)
			  : "rcx", "r11", "memory");
	return ret;
}

static long sys4(long n, long a, long b, long c, long d)
{
	register long r10 __asm__("r10") = d;
	long ret;

	__asm__ volatile ("syscall"
			  : "=a" (ret)
			  : "a" (n), "D" (a), "S" (b), "d" (c), "r" (r10)
			  : "rcx", "r11", "memory");
	return ret;
}

/* The compiler may emit calls to these even when freestanding. */
void *memset(void *s, int c, size_t n)
{
	unsigned char *p = s;

	while (n--)
		*p++ = (unsigned char)c;
	return s;
}

void *memcpy(void *d, const void *s, size_t n)
{
	unsigned char *dp = d;
	const unsigned char *sp = s;

	while (n--)
		*dp++ = *sp++;
	return d;
}

static size_t str_len(const char *s)
{
	size_t n = 0;

	while (s[n])
		n++;
	return n;
}

static int str_eq(const char *a, const char *b)
{
	while (*a && *a == *b) {
		a++;
		b++;
	}
	return *a == *b;
}

static int starts_with(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return 0;
	return 1;
}

static void write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		long w = sys3(SYS_write, fd, (long)buf, (long)n);

		if (w == -4) /* EINTR */
			continue;
		if (w <= 0)
			return;
		buf += w;
		n -= (size_t)w;
	}
}

static void out(const char *s)
{
	write_all(1, s, str_len(s));
}

static void out_num(long v)
{
	char buf[24];
	int i = sizeof(buf);
	int neg = v < 0;
	unsigned long u = neg ? -(unsigned long)v : (unsigned long)v;

	do {
		buf[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		buf[--i] = '-';
	write_all(1, buf + i, sizeof(buf) - i);
}

/* errno values of x86-64 Linux, by name. */
static const char *errno_name(long e)
{
	switch (e) {
	case 1: return "EPERM";
	case 2: return "ENOENT";
	case 4: return "EINTR";
	case 5: return "EIO";
	case 6: return "ENXIO";
	case 9: return "EBADF";
	case 11: return "EAGAIN";
	case 12: return "ENOMEM";
	case 13: return "EACCES";
	case 14: return "EFAULT";
	case 16: return "EBUSY";
	case 19: return "ENODEV";
	case 22: return "EINVAL";
	case 38: return "ENOSYS";
	case 105: return "ENOBUFS";
	case 108: return "ESHUTDOWN";
	default: return 0;
	}
}

static void out_errno(long e)
{
	const char *name = errno_name(e);

	if (name) {
		out(name);
	} else {
		out("errno-");
		out_num(e);
	}
}

static long parse_num(const char *s)
{
	long v = 0;

	if (!*s)
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (*s - '0');
	}
	return v;
}

struct timespec_k {
	long tv_sec;
	long tv_nsec;
};

static void sleep_ms(long ms)
{
	struct timespec_k ts = { ms / 1000, (ms % 1000) * 1000000L };

	sys3(SYS_nanosleep, (long)&ts, 0, 0);
}

static int exists(const char *path)
{
	return sys4(SYS_faccessat, AT_FDCWD, (long)path, 0, 0) == 0;
}

static char buf[65536];

static int session(int argc, char **argv)
{
	int flags = O_RDONLY;
	int i = 3;
	long fd;

	if (argc > 3 && str_eq(argv[3], "nonblock")) {
		flags |= O_NONBLOCK;
		i = 4;
	}
	fd = sys3(SYS_open, (long)argv[2], flags, 0);
	if (fd < 0) {
		out("@@open error ");
		out_errno(-fd);
		out("\n");
		return 1;
	}
	out("@@open ok\n");
	for (; i < argc; i++) {
		if (starts_with(argv[i], "wait:")) {
			const char *path = argv[i] + 5;
			int t;

			for (t = 0; t < 6000 && !exists(path); t++)
				sleep_ms(10);
			out(exists(path) ? "@@wait ok\n" : "@@wait timeout\n");
			continue;
		}
		long n = parse_num(argv[i]);

		if (n < 0 || n > (long)sizeof(buf)) {
			out("@@bad step ");
			out(argv[i]);
			out("\n");
			return 2;
		}
		long r = sys3(SYS_read, fd, (long)buf, n);

		out("@@read ");
		out_num(n);
		if (r > 0) {
			out(" data ");
			out_num(r);
			out("\n");
			write_all(1, buf, (size_t)r);
		} else if (r == 0) {
			out(" eof\n");
		} else {
			out(" error ");
			out_errno(-r);
			out("\n");
		}
	}
	sys3(SYS_close, fd, 0, 0);
	out("@@done\n");
	return 0;
}

/* One KERN_DEBUG record per line of buf[0..n). */
static void log_lines(int kfd, long n)
{
	static const char prefix[] = "<7>kbdtool: read ";
	static char rec[512];
	long start = 0;

	for (long j = 0; j < n; j++) {
		/* The line with its newline: a record without one stays open
		 * for a continuation, unseen by readers of the log.
		 */
		long len = j + 1 - start;

		if (buf[j] != '\n')
			continue;
		if (len > (long)(sizeof(rec) - sizeof(prefix)))
			len = sizeof(rec) - sizeof(prefix);
		memcpy(rec, prefix, sizeof(prefix) - 1);
		memcpy(rec + sizeof(prefix) - 1, buf + start, (size_t)len);
		write_all(kfd, rec, sizeof(prefix) - 1 + (size_t)len);
		start = j + 1;
	}
}

static int relay(int argc, char **argv)
{
	int kmsg_on = argc > 4 && str_eq(argv[4], "kmsg");
	long fd = sys3(SYS_open, (long)argv[2], O_RDONLY, 0);
	long ofd = sys3(SYS_open, (long)argv[3], O_WRONLY, 0);
	long kfd = kmsg_on ? sys3(SYS_open, (long)"/dev/kmsg", O_WRONLY, 0) : -1;

	if (fd < 0 || ofd < 0 || (kmsg_on && kfd < 0)) {
		out("@@relay open error\n");
		return 1;
	}
	out("@@open ok\n");
	for (;;) {
		long r = sys3(SYS_read, fd, (long)buf, sizeof(buf));

		if (r <= 0) {
			out("@@relay end ");
			if (r == 0)
				out("eof");
			else
				out_errno(-r);
			out("\n");
			return 0;
		}
		if (kmsg_on)
			log_lines((int)kfd, r);
		write_all((int)ofd, buf, (size_t)r);
	}
}

int start_c(long *sp)
{
	int argc = (int)sp[0];
	char **argv = (char **)(sp + 1);

	if (argc >= 3 && str_eq(argv[1], "session"))
		return session(argc, argv);
	if (argc >= 4 && str_eq(argv[1], "relay"))
		return relay(argc, argv);
	out("usage: kbdtool session DEV [nonblock] STEP... | relay DEV OUT [kmsg]\n");
	return 2;
}

void exit_with(int status)
{
	sys3(SYS_exit_group, status, 0, 0);
	for (;;)
		;
}

__asm__(".text\n"
	".globl _start\n"
	"_start:\n"
	"	xor %rbp, %rbp\n"
	"	mov %rsp, %rdi\n"
	"	and $-16, %rsp\n"
	"	call start_c\n"
	"	mov %eax, %edi\n"
	"	call exit_with\n"
	"	hlt\n");
