/* SPDX-License-Identifier: MIT */
/* A guest's own xvdm configuration file (see guest-config.h). */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guest-config.h"
#include "log.h"
#include "store.h"

/* The guest's name as a file name: the toolstack writes it, but it must
 * not lead out of the directory. A name that cannot be one is no error of
 * the guest's devices: that guest has no file, said once, and its
 * devices are served without one (else its instance would fail, and be
 * restarted, for ever). 0 and *name set; 1: no file; or a negative
 * errno. */
static int guest_config_name(struct store *st, uint32_t domid, char **name,
                             char *err, size_t errlen)
{
    char path[64];

    snprintf(path, sizeof(path), "/local/domain/%u/name", domid);
    *name = store_read(st, path);
    /* xenstored shows a backend in another domain than dom0 (a driver
     * domain) its guest's backend nodes, not the guest's own. */
    if (!*name && errno == EACCES) {
        log_warn("domain %u: this domain may not read its name (%s): no "
                 "device file read for it", domid, path);
        return 1;
    }
    if (!*name)
        return errbuf_printf(err, errlen,
                             "domain %u has no name in xenstore (%s)",
                             domid, path);
    if (!**name || **name == '.' || strchr(*name, '/') ||
        strlen(*name) > 128) {
        log_warn("domain %u: its name '%.128s' cannot name a file: no "
                 "device file read for it", domid, *name);
        free(*name);
        return 1;
    }
    return 0;
}

/* The file's text, NUL-terminated; NULL with *ret 0 when there is none. */
static char *guest_config_load(const char *path, int *ret, char *err,
                               size_t errlen)
{
    FILE *f = fopen(path, "re");
    char *text;
    size_t got;

    *ret = 0;
    if (!f) {
        if (errno != ENOENT)
            *ret = errbuf_printf(err, errlen, "cannot read %s: %s", path,
                                 strerror(errno));
        return NULL;
    }
    text = malloc(GUEST_CONFIG_BYTES_MAX + 1);
    got = text ? fread(text, 1, GUEST_CONFIG_BYTES_MAX + 1, f) : 0;
    if (!text)
        *ret = -ENOMEM;
    else if (ferror(f))
        *ret = errbuf_printf(err, errlen, "cannot read %s", path);
    else if (got > GUEST_CONFIG_BYTES_MAX)
        *ret = errbuf_printf(err, errlen, "%s is larger than %d bytes", path,
                             GUEST_CONFIG_BYTES_MAX);
    fclose(f);
    if (*ret) {
        free(text);
        return NULL;
    }
    text[got] = '\0';
    return text;
}

/* One line, comment and surrounding blanks cut: a device, or nothing. */
static int guest_config_line(char *line, const char *path, unsigned nr,
                             struct devspec *out, unsigned max, unsigned *n,
                             char *err, size_t errlen)
{
    char msg[512];
    char *end;

    line[strcspn(line, "#")] = '\0';
    line += strspn(line, " \t");
    end = line + strlen(line);
    while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
                          end[-1] == '\r'))
        *--end = '\0';
    if (!*line)
        return 0;
    if (*n == max)
        return errbuf_printf(err, errlen, "%s:%u: more than %u devices",
                             path, nr, max);
    if (devspec_parse(line, &out[*n], msg, sizeof(msg)))
        return errbuf_printf(err, errlen, "%s:%u: %s", path, nr, msg);
    out[*n].backs_declared_only = !out[*n].base_given && !out[*n].irq_given;
    (*n)++;
    return 0;
}

int guest_config_read(struct store *st, uint32_t domid, const char *dir,
                      struct devspec *out, unsigned max, unsigned *n,
                      char *path, size_t len, char *err, size_t errlen)
{
    char *name, *text, *line, *next;
    unsigned nr = 0;
    int ret;

    *n = 0;
    ret = guest_config_name(st, domid, &name, err, errlen);
    if (ret > 0)
        snprintf(path, len, "(no file for domain %u)", domid);
    if (ret)
        return ret > 0 ? 0 : ret;
    snprintf(path, len, "%s/%s.conf", dir, name);
    free(name);
    text = guest_config_load(path, &ret, err, errlen);
    for (line = text; line && ret == 0; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        ret = guest_config_line(line, path, ++nr, out, max, n, err, errlen);
    }
    free(text);
    if (ret) {
        for (unsigned i = 0; i < *n; i++)
            devspec_free(&out[i]);
        *n = 0;
    }
    return ret;
}

int guest_config_combine(const struct devspec *cli, unsigned nr_cli,
                         const struct devspec *file, unsigned nr_file,
                         const char *path, struct devspec *given,
                         unsigned max, char *err, size_t errlen)
{
    if (nr_cli > max || nr_file > max - nr_cli) {
        errbuf_printf(err, errlen,
                      "'%s': %u device line(s) plus %u from the command "
                      "line: more than %u",
                      path, nr_file, nr_cli, max);
        return -E2BIG;
    }
    memcpy(given, cli, nr_cli * sizeof(*cli));
    memcpy(given + nr_cli, file, nr_file * sizeof(*file));
    return 0;
}
