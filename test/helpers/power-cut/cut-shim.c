/*
 * LD_PRELOAD shim for the power-cut tests (rig.ts): counts a process's calls of the kinds that order
 * durability (rename, fsync, unlink, write, utimensat, mkdir, link, ftruncate) over ALL its threads,
 * and stops the whole process (SIGSTOP) right after the Nth call of one kind has returned, so that
 * the harness can cut the power exactly there. (strace's inject counts per thread, and node spreads
 * its file I/O over libuv's pool: "the 5th rename" would be whichever thread gets to its 5th.)
 *
 * Environment: CV_CUT_KIND (a kind below) and CV_CUT_NTH (N; 0 or unset: only count);
 * CV_CUT_COUNTS: a file the totals per kind are written to when the process exits normally.
 * Writes count only when they go to a regular file (not node's eventfds and pipes, nor a terminal).
 * Built by the harness with `cc -shared -fPIC -O2 -o cut-shim.so cut-shim.c -ldl`.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

enum kind { K_RENAME, K_FSYNC, K_UNLINK, K_WRITE, K_UTIMENSAT, K_MKDIR, K_LINK, K_FTRUNCATE, K_COUNT };
static const char *const kind_names[K_COUNT] = { "rename", "fsync", "unlink", "write", "utimensat", "mkdir", "link", "ftruncate" };

static atomic_long counts[K_COUNT];
static int cut_kind = -1;
static long cut_nth;

__attribute__((constructor)) static void shim_init(void) {
  const char *kind = getenv("CV_CUT_KIND");
  const char *nth = getenv("CV_CUT_NTH");
  for (int k = 0; kind && k < K_COUNT; k++)
    if (strcmp(kind, kind_names[k]) == 0) cut_kind = k;
  cut_nth = nth ? atol(nth) : 0;
}

__attribute__((destructor)) static void shim_report(void) {
  const char *file = getenv("CV_CUT_COUNTS");
  if (!file) return;
  FILE *out = fopen(file, "w");
  if (!out) return;
  for (int k = 0; k < K_COUNT; k++) fprintf(out, "%s %ld\n", kind_names[k], atomic_load(&counts[k]));
  fclose(out);
}

/* After a call of kind k returned: count it, and stop the process after the Nth of the chosen kind. */
static void after(int k) {
  long n = atomic_fetch_add(&counts[k], 1) + 1;
  if (k == cut_kind && n == cut_nth) raise(SIGSTOP);
}

#define WRAP(ret, name, k, params, args)                              \
  ret name params {                                                   \
    static ret(*real) params;                                         \
    if (!real) real = (ret(*) params)dlsym(RTLD_NEXT, #name);         \
    ret r = real args;                                                \
    after(k);                                                         \
    return r;                                                         \
  }

/* Writes count only to regular files: node's threads also write to eventfds and pipes all the time. */
static int regular(int fd) {
  struct stat st;
  return fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
}

#define WRAP_WRITE(name, params, args)                                \
  ssize_t name params {                                               \
    static ssize_t(*real) params;                                     \
    if (!real) real = (ssize_t(*) params)dlsym(RTLD_NEXT, #name);     \
    ssize_t r = real args;                                            \
    if (regular(fd)) after(K_WRITE);                                  \
    return r;                                                         \
  }

WRAP(int, rename, K_RENAME, (const char *a, const char *b), (a, b))
WRAP(int, renameat, K_RENAME, (int fa, const char *a, int fb, const char *b), (fa, a, fb, b))
WRAP(int, renameat2, K_RENAME, (int fa, const char *a, int fb, const char *b, unsigned int f), (fa, a, fb, b, f))
WRAP(int, fsync, K_FSYNC, (int fd), (fd))
WRAP(int, fdatasync, K_FSYNC, (int fd), (fd))
WRAP(int, unlink, K_UNLINK, (const char *p), (p))
WRAP(int, unlinkat, K_UNLINK, (int fd, const char *p, int f), (fd, p, f))
WRAP(int, rmdir, K_UNLINK, (const char *p), (p))
WRAP_WRITE(write, (int fd, const void *b, size_t n), (fd, b, n))
WRAP_WRITE(writev, (int fd, const struct iovec *v, int n), (fd, v, n))
WRAP_WRITE(pwrite, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
WRAP_WRITE(pwrite64, (int fd, const void *b, size_t n, off_t o), (fd, b, n, o))
WRAP_WRITE(pwritev, (int fd, const struct iovec *v, int n, off_t o), (fd, v, n, o))
WRAP_WRITE(pwritev64, (int fd, const struct iovec *v, int n, off_t o), (fd, v, n, o))
WRAP(int, utimensat, K_UTIMENSAT, (int fd, const char *p, const struct timespec t[2], int f), (fd, p, t, f))
WRAP(int, futimens, K_UTIMENSAT, (int fd, const struct timespec t[2]), (fd, t))
WRAP(int, mkdir, K_MKDIR, (const char *p, mode_t m), (p, m))
WRAP(int, mkdirat, K_MKDIR, (int fd, const char *p, mode_t m), (fd, p, m))
WRAP(int, link, K_LINK, (const char *a, const char *b), (a, b))
WRAP(int, linkat, K_LINK, (int fa, const char *a, int fb, const char *b, int f), (fa, a, fb, b, f))
WRAP(int, ftruncate, K_FTRUNCATE, (int fd, off_t n), (fd, n))
WRAP(int, ftruncate64, K_FTRUNCATE, (int fd, off_t n), (fd, n))
