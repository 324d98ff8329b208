/* gw_sock.h -- the local control sockets of the daemons: root-only unix stream listeners. */
#ifndef GW_SOCK_H
#define GW_SOCK_H

/*
 * Listen on a unix stream socket at path, mode 0600 (parent directory created 0755),
 * non-blocking and close-on-exec. A socket file that still answers belongs to a running
 * daemon and is never taken over (-EADDRINUSE); a stale one is replaced. fd or -errno.
 */
int gw_unix_listen_private(const char *path);

#endif
