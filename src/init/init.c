/* sandbox-init: PID 1 of every sandbox. It reaps orphans, forwards signals
 * from the host to the sandbox's processes, and on SIGTERM from the host
 * asks everyone to leave and exits once alone. It must stay tiny, static and idle: no allocation, no
 * files, no network; it sleeps in sigwaitinfo until something happens. */
#include "config.h"
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void reap_all(void)
{
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

/* kill(-1, 0) from a namespace's init reaches every other process in it. */
static bool alone(void)
{
	return kill(-1, 0) < 0 && errno == ESRCH;
}

int main(void)
{
	if (getpid() != 1)
		return 2;
	prctl(PR_SET_NAME, "sandbox-init", 0, 0, 0);

	sigset_t all;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, NULL);

	bool stopping = false;
	for (;;) {
		siginfo_t si;
		int sig;
		if (stopping) {
			struct timespec tick = { 0, 50 * 1000 * 1000 };
			reap_all();
			if (alone())
				return 0;
			sig = sigtimedwait(&all, &si, &tick);
		} else {
			sig = sigwaitinfo(&all, &si);
		}
		if (sig < 0)
			continue;
		/* Only sandboxd, outside the sandbox's pid namespace, may stop
		 * the sandbox or signal all of it: a sender there shows up with
		 * si_pid 0. Signals from processes inside are ignored. */
		if (sig != SIGCHLD && si.si_pid != 0)
			continue;
		switch (sig) {
		case SIGCHLD:
			reap_all();
			break;
		case SIGTERM:
		case SIGINT:
		case SIGPWR:
			stopping = true;
			kill(-1, SIGTERM);
			kill(-1, SIGCONT);
			break;
		default:
			kill(-1, sig);
			break;
		}
	}
}
