/*
 * echo.c: a shared backend for wsloop -backend, in C. Every message of every
 * connection goes back to its sender.
 *
 * The protocol is JSON lines (see wsloop's bridge package documentation).
 * wsloop writes the fields of an event in a fixed order, so a message event
 *
 *   {"event":"message","id":"0.4294967297","text":"hi"}
 *
 * becomes the send command
 *
 *   {"cmd":"send","id":"0.4294967297","text":"hi"}
 *
 * by replacing its first 26 bytes: no JSON parser is needed, and binary
 * messages ("binary":"<base64>") come back the same way. Other events
 * (hello, open, close) need no answer.
 *
 * It reads with read(2) and answers everything a read brought in with one
 * write(2), so a busy backend costs few system calls.
 *
 *   cc -O2 -o echo-backend examples/backend/echo.c
 *   wsloop -backend '/ws/echo-c=./echo-backend'              # wsloop runs it
 *   ./echo-backend /run/echo.sock &                          # or it listens
 *   wsloop -backend '/ws/echo-c=unix:///run/echo.sock'
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static const char msg_prefix[] = "{\"event\":\"message\",\"id\":\"";
static const char send_prefix[] = "{\"cmd\":\"send\",\"id\":\"";

struct buf {
	char *p;
	size_t len, cap;
};

static void reserve(struct buf *b, size_t more) {
	if (b->len + more <= b->cap)
		return;
	size_t cap = b->cap ? b->cap : 1 << 16;
	while (cap < b->len + more)
		cap *= 2;
	if (!(b->p = realloc(b->p, cap))) {
		perror("echo backend: realloc");
		exit(1);
	}
	b->cap = cap;
}

static int write_all(int fd, const char *p, size_t n) {
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* serve answers events from in on out until EOF. */
static int serve(int in, int out) {
	struct buf rd = {0}, wr = {0};
	size_t mp = sizeof msg_prefix - 1, sp = sizeof send_prefix - 1;
	for (;;) {
		reserve(&rd, 1 << 16);
		ssize_t n = read(in, rd.p + rd.len, rd.cap - rd.len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		rd.len += (size_t)n;
		size_t start = 0;
		char *nl;
		while ((nl = memchr(rd.p + start, '\n', rd.len - start))) {
			size_t len = (size_t)(nl - (rd.p + start)) + 1;
			char *line = rd.p + start;
			if (len > mp && memcmp(line, msg_prefix, mp) == 0) {
				reserve(&wr, sp + len - mp);
				memcpy(wr.p + wr.len, send_prefix, sp);
				memcpy(wr.p + wr.len + sp, line + mp, len - mp);
				wr.len += sp + len - mp;
			}
			start += len;
		}
		memmove(rd.p, rd.p + start, rd.len - start);
		rd.len -= start;
		if (wr.len > 0) {
			if (write_all(out, wr.p, wr.len) < 0)
				break;
			wr.len = 0;
		}
	}
	free(rd.p);
	free(wr.p);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2)
		return serve(0, 1);
	/* Listen on a Unix socket; serve one wsloop at a time. */
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	if (strlen(argv[1]) >= sizeof addr.sun_path) {
		fprintf(stderr, "echo backend: socket path too long\n");
		return 2;
	}
	strcpy(addr.sun_path, argv[1]);
	unlink(argv[1]);
	int ln = socket(AF_UNIX, SOCK_STREAM, 0);
	if (ln < 0 || bind(ln, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ln, 4) < 0) {
		perror("echo backend: listen");
		return 1;
	}
	for (;;) {
		int c = accept(ln, NULL, NULL);
		if (c < 0) {
			if (errno == EINTR)
				continue;
			perror("echo backend: accept");
			return 1;
		}
		serve(c, c);
		close(c);
	}
}
