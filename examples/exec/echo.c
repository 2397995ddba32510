/*
 * echo.c: a per-connection program for wsloop -exec, in C.
 *
 * Text mode (the default): every message is one line on stdin, every line
 * on stdout one message. Lines of any length are handled with getline.
 * stdout is a pipe, so it is block-buffered: flush after each line, or the
 * client waits for 4 KiB of output.
 *
 *   cc -O2 -o echo examples/exec/echo.c
 *   wsloop -exec '/ws/echo-c=./echo'
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>

int main(void) {
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (fwrite(line, 1, (size_t)n, stdout) != (size_t)n || fflush(stdout) != 0)
			return 1; /* the connection has gone */
	}
	free(line);
	return 0;
}
