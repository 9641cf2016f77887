// Failed writes on demand, for tools/check-interrupts.py: preloaded into an Ingot command (LD_PRELOAD), it makes the
// system calls that put an output on disk fail with EIO, as a dying disk or a lost network mount does.
//
//   INGOT_FAULT=write:N   the write(2) that would take the bytes written to temporary outputs (paths holding
//                         ".ingot-tmp-") past N fails with EIO; so does every later one
//   INGOT_FAULT=fsync     fsync(2) and fdatasync(2) of a temporary output fail with EIO
//   INGOT_FAULT=rename    the rename(2) that puts a temporary output in place fails with EIO
//
// Only temporary outputs are touched: the command's reading, its terminal and its pipes work as always.
//
//   cc -shared -fPIC -O2 -o faults.so tools/faults.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

static const char *marker = ".ingot-tmp-";

static int is_temporary_fd(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, marker) != NULL;
}

static const char *mode(void) {
    const char *m = getenv("INGOT_FAULT");
    return m ? m : "";
}

static long long written = 0;

ssize_t write(int fd, const void *buffer, size_t count) {
    static ssize_t (*real)(int, const void *, size_t);
    if (!real) real = (ssize_t (*)(int, const void *, size_t))dlsym(RTLD_NEXT, "write");
    const char *m = mode();
    if (strncmp(m, "write:", 6) == 0 && fd > 2 && is_temporary_fd(fd)) {
        long long limit = atoll(m + 6);
        if (written + (long long)count > limit) {
            errno = EIO;
            return -1;
        }
        ssize_t n = real(fd, buffer, count);
        if (n > 0) __atomic_add_fetch(&written, n, __ATOMIC_RELAXED);
        return n;
    }
    return real(fd, buffer, count);
}

typedef int (*sync_call)(int);

// fsync and fdatasync: the real call, or EIO for a temporary output under INGOT_FAULT=fsync.
static int sync_or_fail(sync_call *real, const char *name, int fd) {
    if (!*real) *real = (sync_call)dlsym(RTLD_NEXT, name);
    if (strcmp(mode(), "fsync") == 0 && is_temporary_fd(fd)) {
        errno = EIO;
        return -1;
    }
    return (*real)(fd);
}

int fsync(int fd) {
    static sync_call real;
    return sync_or_fail(&real, "fsync", fd);
}

int fdatasync(int fd) {
    static sync_call real;
    return sync_or_fail(&real, "fdatasync", fd);
}

int rename(const char *from, const char *to) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    // The rename that puts an output in place (a file inside a temporary folder is renamed within it first).
    if (strcmp(mode(), "rename") == 0 && strstr(from, marker) != NULL && strstr(to, marker) == NULL) {
        errno = EIO;
        return -1;
    }
    return real(from, to);
}
