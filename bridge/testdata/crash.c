/* Says a word, then dies of a segmentation fault (without a core file). */
#include <stdio.h>
#include <sys/resource.h>

int main(void) {
	struct rlimit none = {0, 0};
	setrlimit(RLIMIT_CORE, &none);
	puts("about to crash");
	fflush(stdout);
	*(volatile int *)0 = 1;
	return 0;
}
