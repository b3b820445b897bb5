/* Atomic file writes shared by checkpoint.c and journal.c (see fileio.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "internal.h"

int intdim__write_fully(int fd, const void *buf, size_t len)
{
    const unsigned char *p = buf;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

int intdim__replace_target(const char *path, char **target_out)
{
    *target_out = NULL;
    struct stat st;
    if (lstat(path, &st) != 0)
        return INTDIM_OK; /* nothing there (or unreachable: creating the file will say why) */
    char *resolved = NULL;
    if (S_ISLNK(st.st_mode)) {
        resolved = realpath(path, NULL);
        if (resolved == NULL)
            return intdim__fail(INTDIM_EIO, "%s is a symbolic link that does not resolve to a "
                                            "file (%s): not replaced", path, strerror(errno));
        if (stat(resolved, &st) != 0) {
            int status = intdim__fail(INTDIM_EIO, "%s (through the link %s): %s", resolved, path,
                                      strerror(errno));
            free(resolved);
            return status;
        }
    }
    if (!S_ISREG(st.st_mode)) {
        int status = intdim__fail(INTDIM_EIO, "%s%s%s is not a regular file (a directory, "
                                              "device, FIFO or socket): not replaced",
                                  resolved != NULL ? resolved : path,
                                  resolved != NULL ? ", the target of " : "",
                                  resolved != NULL ? path : "");
        free(resolved);
        return status;
    }
    if (resolved == NULL)
        return INTDIM_OK;
    size_t len = strlen(resolved) + 1;
    *target_out = intdim__alloc(len);
    if (*target_out != NULL)
        memcpy(*target_out, resolved, len);
    free(resolved);
    return *target_out != NULL ? INTDIM_OK : intdim__fail_nomem("the resolved file name", len);
}

int intdim__open_temp(const char *path, char **tmp_out, int *fd_out)
{
    /* In the target's directory (rename must not cross file systems), under a short name of
     * its own: path + a suffix would fail with ENAMETOOLONG for a legal name near NAME_MAX. */
    const char *slash = strrchr(path, '/');
    int dir_len = slash == NULL ? 0 : (int)(slash - path + 1);
    size_t len = (size_t)dir_len + 64;
    char *tmp = intdim__alloc(len);
    if (tmp == NULL)
        return intdim__fail_nomem("the temporary file name", len);
    static _Atomic unsigned counter;
    for (int attempt = 0; attempt < 100; attempt++) {
        snprintf(tmp, len, "%.*s.intdim.tmp.%ld.%u", dir_len, path, (long)getpid(), counter++);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            *tmp_out = tmp;
            *fd_out = fd;
            return INTDIM_OK;
        }
        if (errno != EEXIST) {
            int status = intdim__fail(INTDIM_EIO, "creating %s: %s", tmp, strerror(errno));
            intdim__free(tmp);
            return status;
        }
    }
    intdim__free(tmp);
    return intdim__fail(INTDIM_EIO, "could not create a unique temporary file next to %s", path);
}

int intdim__commit_temp(int fd, char *tmp, const char *path, int status)
{
    if (status == INTDIM_OK && fsync(fd) != 0)
        status = intdim__fail(INTDIM_EIO, "fsync of %s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && status == INTDIM_OK)
        status = intdim__fail(INTDIM_EIO, "closing %s: %s", tmp, strerror(errno));
    if (status == INTDIM_OK && rename(tmp, path) != 0)
        status = intdim__fail(INTDIM_EIO, "renaming %s to %s: %s", tmp, path, strerror(errno));
    if (status != INTDIM_OK)
        unlink(tmp);
    else
        status = intdim__sync_parent_dir(path);
    intdim__free(tmp);
    return status;
}

int intdim__sync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char dir_buf[4096];
    const char *dir = ".";
    if (slash != NULL) {
        size_t n = slash == path ? 1 : (size_t)(slash - path);
        if (n >= sizeof dir_buf)
            return INTDIM_OK; /* absurdly long directory: the data itself is synced */
        memcpy(dir_buf, path, n);
        dir_buf[n] = '\0';
        dir = dir_buf;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return intdim__fail(INTDIM_EIO, "opening directory %s to fsync: %s", dir, strerror(errno));
    int rc = fsync(fd);
    int err = errno;
    close(fd);
    /* some file systems cannot fsync a directory (EINVAL): nothing more can be done */
    if (rc != 0 && err != EINVAL)
        return intdim__fail(INTDIM_EIO, "fsync of directory %s: %s", dir, strerror(err));
    return INTDIM_OK;
}
