/* Files written atomically (checkpoints, journal headers, merged journals): a temporary
 * file next to the target, created exclusively, written, fsynced, renamed over the target,
 * then the directory fsynced so the rename itself survives a crash. */
#ifndef INTDIM_FILEIO_H
#define INTDIM_FILEIO_H

#include <stddef.h>

/* Write all of buf, retrying short writes and EINTR. 0, or -1 with errno set (EIO when a
 * write made no progress). */
int intdim__write_fully(int fd, const void *buf, size_t len);

/* The file an atomic write to path must replace. Symbolic links are followed, as opening
 * the path would: the file at the end of the chain is replaced (or created, for a link to
 * nothing yet) and the links stay. An existing directory, device, FIFO or socket there is
 * refused with INTDIM_EIO: renaming over it would replace the node itself (a journal at
 * /dev/null, run as root, would have replaced /dev/null). *target_out: NULL to write path
 * itself, or where the links lead (free with intdim__free). */
int intdim__replace_target(const char *path, char **target_out);

/* Create ".intdim.tmp.<pid>.<n>" in path's directory with O_EXCL (never a file another
 * writer, or a planted symlink, already holds; a short name of its own, so any legal path
 * works). On success *tmp_out (free with intdim__free) and *fd_out are set;
 * otherwise a status with a message and nothing to clean up. */
int intdim__open_temp(const char *path, char **tmp_out, int *fd_out);

/* Finish a temporary file from intdim__open_temp: when status is INTDIM_OK, fsync, close,
 * rename onto path and fsync the directory; otherwise (or when any of that fails) close and
 * remove it. Frees tmp. Returns the first failing status. */
int intdim__commit_temp(int fd, char *tmp, const char *path, int status);

/* fsync the directory holding path (a file system that cannot fsync directories is not an
 * error). */
int intdim__sync_parent_dir(const char *path);

#endif
