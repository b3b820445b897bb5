/* Atomic file writes shared by checkpoint.c and journal.c (see fileio.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
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

/* A link's text resolved as the kernel does: absolute, or relative to the link's directory.
 * NULL when out of memory. */
static char *link_destination(const char *link_path, const char *text)
{
    const char *slash = strrchr(link_path, '/');
    size_t dir_len = text[0] == '/' || slash == NULL ? 0 : (size_t)(slash - link_path + 1);
    size_t len = dir_len + strlen(text) + 1;
    char *out = intdim__alloc(len);
    if (out != NULL) {
        memcpy(out, link_path, dir_len);
        memcpy(out + dir_len, text, len - dir_len);
    }
    return out;
}

enum { MAX_LINK_HOPS = 40 }; /* as Linux's own limit: a longer chain is a loop */

int intdim__replace_target(const char *path, char **target_out)
{
    *target_out = NULL;
    char *at = NULL; /* where the links led so far; NULL: path itself */
    for (int hop = 0;; hop++) {
        const char *p = at != NULL ? at : path;
        struct stat st;
        /* nothing there: the file is created here (a missing directory or any other reason
         * it cannot be is what creating the temporary file reports) */
        if (lstat(p, &st) != 0 || S_ISREG(st.st_mode)) {
            *target_out = at;
            return INTDIM_OK;
        }
        int status = INTDIM_OK;
        char text[4096];
        ssize_t n = -1;
        if (!S_ISLNK(st.st_mode))
            status = intdim__fail(INTDIM_EIO, "%s%s%s%s is not a regular file (a directory, "
                                              "device, FIFO or socket): not replaced", p,
                                  at != NULL ? " (reached through the link " : "",
                                  at != NULL ? path : "", at != NULL ? ")" : "");
        else if (hop == MAX_LINK_HOPS)
            status = intdim__fail(INTDIM_EIO, "%s: more than %d symbolic links in a row: not "
                                              "replaced", path, MAX_LINK_HOPS);
        else if ((n = readlink(p, text, sizeof text)) < 0 || (size_t)n == sizeof text)
            status = intdim__fail(INTDIM_EIO, "reading the symbolic link %s: %s", p,
                                  n < 0 ? strerror(errno) : "target name too long");
        char *next = NULL;
        if (status == INTDIM_OK) {
            text[n] = '\0';
            next = link_destination(p, text);
            if (next == NULL)
                status = intdim__fail_nomem("the symbolic link's target", strlen(p) + (size_t)n);
        }
        intdim__free(at);
        if (status != INTDIM_OK)
            return status;
        at = next;
    }
}

/* The file that replaces an existing one keeps its permissions (a private 0600 checkpoint
 * must not become world-readable) and, where the writer may set them (root, or a group it
 * belongs to), its owner and group. Best effort: what cannot be kept is the writer's. */
static void keep_mode_and_owner(int fd, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
        return;
    (void)fchmod(fd, st.st_mode & 0777);
    if (fchown(fd, st.st_uid, st.st_gid) != 0)
        (void)fchown(fd, (uid_t)-1, st.st_gid);
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
            keep_mode_and_owner(fd, path);
            *tmp_out = tmp;
            *fd_out = fd;
            return INTDIM_OK;
        }
        if (errno != EEXIST) {
            int status = intdim__fail(INTDIM_EIO, "writing %s: creating its temporary file %s: %s",
                                      path, tmp, strerror(errno));
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
    /* a directory we may write but not read (mode 0733) cannot be opened to be fsynced: the
     * rename is done and the file complete, as when the file system cannot fsync directories */
    if (fd < 0 && errno == EACCES)
        return INTDIM_OK;
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
