/* SPDX-License-Identifier: MIT */
/* An nbd= URI read as libnbd reads it (see blk-nbd-uri.h). */
#define _GNU_SOURCE
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include "blk-nbd-uri.h"
#include "xvdm/device.h"

#define NBD_SUN_PATH sizeof(((struct sockaddr_un *)0)->sun_path)

/* A URI around its query: RFC 3986 §3, the query runs from the first '?'
 * to the '#' of a fragment, which libnbd (libxml2's xmlParseURI()) leaves
 * out of it. */
struct nbd_uri {
    const char *uri;
    size_t head;       /* bytes before the '?' (or the '#', or all) */
    const char *query; /* after the '?' */
    const char *end;   /* the query's end: the fragment, or the '\0' */
    char *socket;      /* the last socket= decoded, or NULL */
    unsigned sockets;  /* how many socket= */
};

static int nbd_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* s[0..len) with each %XX decoded, as libxml2's xmlURIUnescapeString()
 * decodes it for libnbd: a '%' without two hex digits stays, and a %00
 * ends the string there as it ends libnbd's. NULL when out of memory. */
static char *nbd_unescape(const char *s, size_t len)
{
    char *out = malloc(len + 1), *o = out;

    if (!out)
        return NULL;
    for (size_t i = 0; i < len; i++, o++) {
        if (s[i] == '%' && i + 2 < len && nbd_hex(s[i + 1]) >= 0 &&
            nbd_hex(s[i + 2]) >= 0) {
            *o = (char)(nbd_hex(s[i + 1]) << 4 | nbd_hex(s[i + 2]));
            i += 2;
        } else {
            *o = s[i];
        }
    }
    *o = '\0';
    return out;
}

/* RFC 3986 §2.3's unreserved characters, and '/' for paths to read. */
static bool nbd_plain(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || (c && strchr("-._~/", c));
}

/* s as a query's name or value: every other byte percent-encoded, so
 * that no '&', ';', '=', '#', '%' or space in it is read as syntax. */
static void nbd_escape(FILE *f, const char *s)
{
    for (; *s; s++)
        if (nbd_plain(*s))
            fputc(*s, f);
        else
            fprintf(f, "%%%02X", (unsigned char)*s);
}

/* The parameter in [p, cut) (eq: its '=', or NULL), decoded: 1, or
 * -ENOMEM. Without '=' the value is "", as libnbd has it. */
static int nbd_param_decode(const char *p, const char *eq, const char *cut,
                            char **name, char **value)
{
    const char *v = eq ? eq + 1 : cut;

    *name = nbd_unescape(p, (size_t)((eq ? eq : cut) - p));
    *value = nbd_unescape(v, (size_t)(cut - v));
    if (*name && *value)
        return 1;
    free(*name);
    free(*value);
    return -ENOMEM;
}

/* The next parameter from *at (before end), as libnbd's lib/uri.c
 * parse_uri_queries() cuts and decodes it: pieces end at '&' or ';', an
 * empty one or one starting with '=' is skipped. (libnbd 1.14 ends one
 * at ';' only where no '&' follows: the query it is given has '&' alone,
 * nbd_uri_build().) 1 with *name and *value allocated, 0 at the end,
 * -ENOMEM. */
static int nbd_param_next(const char **at, const char *end, char **name,
                          char **value)
{
    const char *p = *at, *cut, *eq;

    while (p < end) {
        cut = p + strcspn(p, "&;#");
        eq = memchr(p, '=', (size_t)(cut - p));
        *at = cut < end ? cut + 1 : end;
        if (cut > p && eq != p)
            return nbd_param_decode(p, eq, cut, name, value);
        p = *at;
    }
    return 0;
}

/* A socket= value kept (the last, as libnbd keeps it) and counted. */
static void nbd_uri_socket(struct nbd_uri *u, char *value)
{
    free(u->socket);
    u->socket = value;
    u->sockets++;
}

/* uri cut around its query, its socket= parameters read: 0, or -ENOMEM
 * (nothing to free). */
static int nbd_uri_parse(struct nbd_uri *u, const char *uri)
{
    const char *at;
    char *name, *value;
    int r;

    *u = (struct nbd_uri){.uri = uri, .head = strcspn(uri, "?#")};
    at = uri + u->head + (uri[u->head] == '?');
    u->query = at;
    u->end = uri[u->head] == '?' ? at + strcspn(at, "#") : at;
    while ((r = nbd_param_next(&at, u->end, &name, &value)) > 0) {
        if (strcmp(name, "socket") == 0)
            nbd_uri_socket(u, value);
        else
            free(value);
        free(name);
    }
    if (r < 0) {
        free(u->socket);
        u->socket = NULL;
    }
    return r;
}

/* u's URI with each parameter encoded anew from what was read, joined
 * by '&' alone, and socket= given `socket`. NULL with errno. */
static char *nbd_uri_build(const struct nbd_uri *u, const char *socket)
{
    const char *at = u->query, *sep = "?";
    char *out = NULL, *name, *value;
    size_t len;
    FILE *f = open_memstream(&out, &len);
    int r;

    if (!f)
        return NULL;
    fwrite(u->uri, 1, u->head, f);
    while ((r = nbd_param_next(&at, u->end, &name, &value)) > 0) {
        fprintf(f, "%s", sep);
        sep = "&";
        nbd_escape(f, name);
        fputc('=', f);
        nbd_escape(f, strcmp(name, "socket") ? value : socket);
        free(name);
        free(value);
    }
    fputs(u->end, f); /* the fragment, if any, which libnbd ignores */
    if (fclose(f) || r < 0) {
        free(out);
        errno = ENOMEM;
        return NULL;
    }
    return out;
}

/* Whether dom0's "/" is out of reach once serving: under --chroot DIR
 * (other than "/"), where libnbd's certificates and where symbolic links
 * lead are not what they were before the chroot. */
static bool nbd_jailed(void)
{
    return !xvdm_host_path("/");
}

/* Whether `path`, as reached now, goes through a symbolic link (or is
 * not written as it resolves): a link to an absolute path leads
 * elsewhere once inside the chroot. A socket that is not there is left
 * to the connection to report. */
static bool nbd_path_linked(const char *path)
{
    char *real = realpath(path, NULL);
    bool linked = real && strcmp(real, path) != 0;

    free(real);
    return linked;
}

static const char *nbd_socket_refusal(const char *socket)
{
    const char *here;

    if (strlen(socket) >= NBD_SUN_PATH)
        return "its socket's path is too long for a Unix socket";
    here = xvdm_host_path(socket);
    if (!here)
        return "its socket is outside the --chroot directory (or leaves "
               "it by \"..\"): once serving, a reconnect could not reach it";
    if (nbd_jailed() && nbd_path_linked(here))
        return "its socket's path is not the path it resolves to (a "
               "symbolic link?): inside the --chroot directory a reconnect "
               "could reach another socket; give the resolved path";
    return NULL;
}

static const char *nbd_uri_refusal(const struct nbd_uri *u)
{
    if (u->sockets > 1)
        return "socket= is given more than once (libnbd connects to the "
               "last)";
    if (nbd_jailed() && strncmp(u->uri, "nbds", 4) == 0)
        return "TLS is not served under --chroot: libnbd reads the "
               "certificates at each handshake, and a reconnect inside "
               "the --chroot directory could not";
    return u->socket ? nbd_socket_refusal(u->socket) : NULL;
}

int blk_nbd_uri_check(const char *uri, const char **why)
{
    struct nbd_uri u;

    if (nbd_uri_parse(&u, uri)) {
        *why = strerror(ENOMEM);
        return -ENOMEM;
    }
    *why = nbd_uri_refusal(&u);
    free(u.socket);
    return *why ? -EINVAL : 0;
}

char *blk_nbd_uri_now(const char *uri)
{
    struct nbd_uri u;
    const char *here = NULL;
    char *out = NULL;

    if (nbd_uri_parse(&u, uri)) {
        errno = ENOMEM;
        return NULL;
    }
    if (u.socket && strlen(u.socket) >= NBD_SUN_PATH)
        errno = ENAMETOOLONG;
    else if (u.socket && !(here = xvdm_host_path(u.socket)))
        errno = ENOENT;
    else
        out = nbd_uri_build(&u, here);
    free(u.socket);
    return out;
}
