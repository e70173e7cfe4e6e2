/*
 * proc.c - the drill's child processes: spawning (as the server user, dying
 * with us), bounded waiting, finding what runs in the scratch directory,
 * and the guardian that cleans up if pgvault itself is killed
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/fsutil.h"
#include "drill/drill_int.h"

extern char **environ;

/* ------------------------------------------------------------ identity */

int
pv_drill_ident_lookup(pv_drill_ident *id, pv_err *err)
{
	struct passwd *pw;
	int			n = 32;

	memset(id, 0, sizeof(*id));
	if (geteuid() != 0)
	{
		id->uid = geteuid();
		id->gid = getegid();
		pw = getpwuid(id->uid);
		snprintf(id->name, sizeof(id->name), "%s", pw ? pw->pw_name : "?");
		return 0;
	}
	errno = 0;
	pw = getpwnam("postgres");
	if (pw == NULL)
	{
		pv_err_set(err, PV_E_PRECOND, errno, "running as root, a drill starts PostgreSQL as the \"postgres\" user, which does not exist");
		return pv_err_hint(err, "install PostgreSQL from the distribution (it creates the user), or run pgvault drill as the user that owns your clusters");
	}
	if (pw->pw_uid == 0)
		return pv_err_set(err, PV_E_PRECOND, 0, "the \"postgres\" user has uid 0: PostgreSQL refuses to run as root");
	id->drop = true;
	id->uid = pw->pw_uid;
	id->gid = pw->pw_gid;
	snprintf(id->name, sizeof(id->name), "%s", pw->pw_name);
	for (;;)
	{
		int			got = n;

		id->groups = pv_realloc(id->groups, (size_t) n * sizeof(gid_t));
		if (getgrouplist(id->name, id->gid, id->groups, &got) >= 0)
		{
			id->ngroups = got;
			break;
		}
		if (got <= n)
			n *= 2;
		else
			n = got;
		if (n > 65536)
			return pv_err_set(err, PV_E_FAIL, 0, "could not list the groups of user \"%s\"", id->name);
	}
	return 0;
}

void
pv_drill_ident_free(pv_drill_ident *id)
{
	free(id->groups);
	id->groups = NULL;
}

/* ------------------------------------------------------------ spawning */

/* In the child: a fixed message to stderr (async-signal-safe), then exit 127. */
static void
child_fail(const char *what)
{
	const char	prefix[] = "pgvault drill: child: ";
	ssize_t		w;

	w = write(2, prefix, sizeof(prefix) - 1);
	w = write(2, what, strlen(what));
	w = write(2, "\n", 1);
	(void) w;
	_exit(127);
}

static void
close_from(int lowfd)
{
#ifdef SYS_close_range
	if (syscall(SYS_close_range, lowfd, ~0U, 0) == 0)
		return;
#endif
	for (int fd = lowfd; fd < 4096; fd++)
		close(fd);
}

int
pv_drill_spawn_child(const pv_drill_spawn *s, pid_t *pid, pv_err *err)
{
	pid_t		parent = getpid();
	pid_t		p;

	p = fork();
	if (p < 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not start \"%s\"", s->argv[0]);
	if (p > 0)
	{
		*pid = p;
		return 0;
	}

	/* the child: async-signal-safe calls only from here on */
	{
		sigset_t	none;
		struct sigaction dfl;
		static const int sigs[] = {SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGPIPE, SIGCHLD, SIGUSR1, SIGUSR2};
		int			in;
		int			out;

		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
			sigaction(sigs[i], &dfl, NULL);
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (s->new_session)
			setsid();
		in = open("/dev/null", O_RDONLY);
		out = s->log_path ? open(s->log_path, O_WRONLY | O_CREAT | O_APPEND, 0640) : open("/dev/null", O_WRONLY);
		if (in < 0 || out < 0)
			child_fail("cannot open /dev/null or the log file");
		if (dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
			child_fail("dup2 failed");
		close_from(3);
		if (s->ident != NULL && s->ident->drop)
		{
			if (setgroups((size_t) s->ident->ngroups, s->ident->groups) != 0 ||
				setgid(s->ident->gid) != 0 || setuid(s->ident->uid) != 0)
				child_fail("cannot switch to the server user");
		}
		/* after the switch: a change of credentials clears the death signal */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
			_exit(127);
		if (chdir(s->cwd) != 0)
			child_fail("cannot change to the working directory");
		execve(s->argv[0], s->argv, s->envp ? s->envp : environ);
		child_fail("exec failed");
	}
	return -1;					/* not reached */
}

const char *
pv_drill_status_text(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(status));
	else
		snprintf(buf, len, "status 0x%x", (unsigned) status);
	return buf;
}

void
pv_drill_kill_child(pid_t pid, int sig, uint64_t grace_ms)
{
	uint64_t	until = pv_mono_ms() + grace_ms;
	int			st;

	kill(pid, sig);
	while (pv_mono_ms() < until)
	{
		pid_t		r = waitpid(pid, &st, WNOHANG);

		if (r == pid || (r < 0 && errno == ECHILD))
			return;
		pv_sleep_ms(20);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

pv_drill_wait_result
pv_drill_wait_child(pid_t pid, uint64_t deadline_ms, volatile sig_atomic_t *stop, int *status,
					void (*tick) (void *arg), void *arg)
{
	for (;;)
	{
		pid_t		r = waitpid(pid, status, WNOHANG);

		if (r == pid)
			return PV_DRILL_EXITED;
		if (r < 0 && errno != EINTR)
		{
			*status = 0x7f00;	/* "exit 127": lost track of it */
			return PV_DRILL_EXITED;
		}
		if (stop != NULL && *stop)
		{
			pv_drill_kill_child(pid, SIGTERM, 5000);
			return PV_DRILL_STOPPED;
		}
		if (deadline_ms != 0 && pv_mono_ms() >= deadline_ms)
		{
			pv_drill_kill_child(pid, SIGTERM, 5000);
			return PV_DRILL_TIMEOUT;
		}
		if (tick != NULL)
			tick(arg);
		pv_sleep_ms(50);
	}
}

/* ------------------------------------------------------------ what runs under a directory */

static bool
under(const char *path, const char *dir, size_t dlen)
{
	return strncmp(path, dir, dlen) == 0 && (path[dlen] == '\0' || path[dlen] == '/');
}

/*
 * Has the process a controlling terminal? Nothing the drill leaves running
 * has one (the server and bwrap start new sessions), while a person's shell
 * that wandered into the scratch directory does: that one is never killed.
 */
static bool
has_tty(long pid)
{
	char		path[64];
	char		buf[1024];
	FILE	   *f;
	char	   *p;
	int			tty = 0;
	size_t		n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "r")) == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* "pid (comm) state ppid pgrp session tty_nr ...": comm may hold anything */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %*c %*d %*d %*d %d", &tty) != 1)
		return false;
	return tty != 0;
}

size_t
pv_drill_procs_under(const char *dir, pid_t *pids, size_t max)
{
	DIR		   *d = opendir("/proc");
	struct dirent *de;
	size_t		dlen = strlen(dir);
	size_t		n = 0;
	pid_t		self = getpid();

	if (d == NULL)
		return 0;
	while ((de = readdir(d)) != NULL)
	{
		char		link[64];
		char		cwd[4096];
		ssize_t		len;
		long		pid;
		char	   *end;

		pid = strtol(de->d_name, &end, 10);
		if (*end != '\0' || pid <= 0 || (pid_t) pid == self)
			continue;
		snprintf(link, sizeof(link), "/proc/%ld/cwd", pid);
		len = readlink(link, cwd, sizeof(cwd) - 1);
		if (len <= 0)
			continue;
		cwd[len] = '\0';
		if (!under(cwd, dir, dlen) || has_tty(pid))
			continue;
		if (n < max)
			pids[n] = (pid_t) pid;
		n++;
	}
	closedir(d);
	return n;
}

size_t
pv_drill_kill_under(const char *dir, int sig, uint64_t wait_ms)
{
	pid_t		pids[256];
	size_t		n;
	uint64_t	until;

	for (int round = 0; round < 2; round++)
	{
		n = pv_drill_procs_under(dir, pids, 256);
		for (size_t i = 0; i < n && i < 256; i++)
			kill(pids[i], round == 0 ? sig : SIGKILL);
		until = pv_mono_ms() + (round == 0 ? wait_ms : 5000);
		while (n > 0 && pv_mono_ms() < until)
		{
			/* a zombie has no working directory: it no longer counts */
			pv_sleep_ms(50);
			n = pv_drill_procs_under(dir, pids, 256);
		}
		if (n == 0)
			return 0;
	}
	return n;
}

/* ------------------------------------------------------------ the guardian */

static void
guard_main(int fd, const char *scratch, bool keep)
{
	struct sigaction ign;
	char		c;
	ssize_t		r;
	pv_err		err;
	int			null = open("/dev/null", O_RDWR);

	/* out of the terminal's process group; survive what is sent to it */
	setpgid(0, 0);
	memset(&ign, 0, sizeof(ign));
	ign.sa_handler = SIG_IGN;
	sigaction(SIGINT, &ign, NULL);
	sigaction(SIGTERM, &ign, NULL);
	sigaction(SIGHUP, &ign, NULL);
	sigaction(SIGPIPE, &ign, NULL);
	/* never hold the caller's stdout/stderr open (a $(...) would wait for us) */
	if (null >= 0)
	{
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
	}
	if (dup2(fd, 3) < 0)
		_exit(1);
	close_from(4);
	do
		r = read(3, &c, 1);
	while (r < 0 && errno == EINTR);
	if (r == 1)
		_exit(0);				/* released: pgvault cleaned up itself */
	/* pgvault is gone without releasing us: what it started dies with it, make sure */
	pv_drill_kill_under(scratch, SIGKILL, 10000);
	if (!keep)
	{
		pv_err_clear(&err);
		pv_rmtree(scratch, &err);
	}
	_exit(0);
}

int
pv_drill_guard_start(pv_drill_guard *g, const char *scratch, bool keep, pv_err *err)
{
	int			p[2];
	pid_t		pid;

	g->pid = -1;
	g->fd = -1;
	if (pipe2(p, O_CLOEXEC) != 0)
		return pv_err_set(err, PV_E_FAIL, errno, "could not create a pipe");
	pid = fork();
	if (pid < 0)
	{
		close(p[0]);
		close(p[1]);
		return pv_err_set(err, PV_E_FAIL, errno, "could not start the drill's guardian process");
	}
	if (pid == 0)
	{
		close(p[1]);
		guard_main(p[0], scratch, keep);
	}
	close(p[0]);
	g->pid = pid;
	g->fd = p[1];
	return 0;
}

void
pv_drill_guard_release(pv_drill_guard *g)
{
	ssize_t		w;

	if (g->fd >= 0)
	{
		w = write(g->fd, "d", 1);
		(void) w;
		close(g->fd);
		g->fd = -1;
	}
	if (g->pid > 0)
	{
		while (waitpid(g->pid, NULL, 0) < 0 && errno == EINTR)
			;
		g->pid = -1;
	}
}

/* ------------------------------------------------------------ logs */

static char *
read_tail(const char *path, size_t max_bytes)
{
	FILE	   *f = fopen(path, "r");
	long		size;
	char	   *buf;
	size_t		n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0)
	{
		fclose(f);
		return NULL;
	}
	if ((size_t) size > max_bytes)
		fseek(f, size - (long) max_bytes, SEEK_SET);
	else
		fseek(f, 0, SEEK_SET);
	buf = pv_malloc(max_bytes + 1);
	n = fread(buf, 1, max_bytes, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

char *
pv_drill_log_tail(const char *path, size_t max_bytes, int max_lines)
{
	char	   *buf = read_tail(path, max_bytes);
	size_t		n;
	int			lines = 0;
	char	   *start;
	char	   *out;

	if (buf == NULL)
		return NULL;
	n = strlen(buf);
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	start = buf + n;
	while (start > buf && lines < max_lines)
	{
		start--;
		if (*start == '\n' && ++lines == max_lines)
		{
			start++;
			break;
		}
	}
	out = pv_strdup(start);
	free(buf);
	return out[0] ? out : (free(out), NULL);
}

/* FATAL lines that only say a connection attempt came too early or too late */
static bool
connection_noise(const char *line)
{
	static const char *const noise[] = {"the database system is starting up", "is not accepting connections",
	"the database system is shutting down", "Hot standby mode is disabled", "terminating connection because"};

	for (size_t i = 0; i < sizeof(noise) / sizeof(noise[0]); i++)
		if (strstr(line, noise[i]) != NULL)
			return true;
	return false;
}

char *
pv_drill_log_error_line(const char *path)
{
	static const char *const marks[] = {"PANIC:", "FATAL:", "error:", "ERROR:"};
	char	   *buf = read_tail(path, 256 * 1024);
	char	   *found = NULL;
	char	   *save = NULL;

	if (buf == NULL)
		return NULL;
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]) && found == NULL; m++)
	{
		char	   *copy = pv_strdup(buf);

		for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
			if (strstr(line, marks[m]) != NULL && !connection_noise(line))
			{
				free(found);
				found = pv_strdup(line);
			}
		free(copy);
	}
	free(buf);
	return found;
}

char *
pv_drill_log_find_line(const char *path, const char *needle)
{
	char	   *buf = read_tail(path, 256 * 1024);
	char	   *found = NULL;
	char	   *save = NULL;

	if (buf == NULL)
		return NULL;
	for (char *line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
	{
		char	   *p = strstr(line, needle);

		if (p != NULL)
		{
			free(found);
			found = pv_strdup(p);
		}
	}
	free(buf);
	return found;
}
