/* SPDX-License-Identifier: MIT */
/* The simulated xenstore (see store-sim.h). */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "store-sim.h"
#include "store.h"

#define SIM_DOMAINS_MAX 64

struct sim_node {
    char *path;
    char *value;
    bool unreadable; /* reads fail with EACCES */
};

struct sim_watch {
    char *path;
    char *token;
};

struct sim_event {
    struct sim_event *next;
    char **block; /* path, token */
};

struct store_sim {
    struct store st;
    pthread_mutex_t lock;
    pthread_cond_t changed;
    unsigned nr_nodes;
    struct sim_node *nodes;
    unsigned nr_watches;
    struct sim_watch *watches;
    struct sim_event *head, **tail;
    int event_fd;
    unsigned nr_domains;
    uint32_t domains[SIM_DOMAINS_MAX];
    bool unprivileged;
};

static struct store_sim *sim_of(struct store *st)
{
    return (struct store_sim *)st;
}

/* ---- strings ---------------------------------------------------------- */

/* n strings in one malloc'd block: the pointer array, then the bytes, as
 * libxenstore returns lists, so callers free() once either way. */
static char **pack_strings(const char *const *strs, unsigned n)
{
    size_t bytes = (n + 1) * sizeof(char *);
    char **block, *p;

    for (unsigned i = 0; i < n; i++)
        bytes += strlen(strs[i]) + 1;
    block = malloc(bytes);
    if (!block)
        return NULL;
    p = (char *)(block + n + 1);
    for (unsigned i = 0; i < n; i++) {
        block[i] = strcpy(p, strs[i]);
        p += strlen(strs[i]) + 1;
    }
    block[n] = NULL;
    return block;
}

/* Is `path` `top` itself or below it? */
static bool path_within(const char *path, const char *top)
{
    size_t len = strlen(top);

    return strncmp(path, top, len) == 0 &&
           (path[len] == '\0' || path[len] == '/');
}

/* ---- watches (lock held) ------------------------------------------------ */

static void queue_event(struct store_sim *s, const char *path,
                        const char *token)
{
    const char *strs[] = {path, token};
    struct sim_event *e = calloc(1, sizeof(*e));
    uint64_t one = 1;

    if (!e || !(e->block = pack_strings(strs, 2))) {
        free(e); /* a lost event is what a full xenstored queue does too */
        return;
    }
    *s->tail = e;
    s->tail = &e->next;
    if (write(s->event_fd, &one, sizeof(one)) != sizeof(one))
        return;
}

/* `path` changed: fire every watch on it or above it. */
static void fire_change(struct store_sim *s, const char *path)
{
    for (unsigned i = 0; i < s->nr_watches; i++)
        if (path_within(path, s->watches[i].path))
            queue_event(s, path, s->watches[i].token);
}

/* `path` was removed: also fire the watches inside it, with their own
 * paths, as xenstored does. */
static void fire_removal(struct store_sim *s, const char *path)
{
    fire_change(s, path);
    for (unsigned i = 0; i < s->nr_watches; i++)
        if (path_within(s->watches[i].path, path) &&
            strcmp(s->watches[i].path, path) != 0)
            queue_event(s, s->watches[i].path, s->watches[i].token);
}

/* ---- nodes (lock held) -------------------------------------------------- */

static struct sim_node *find_node(struct store_sim *s, const char *path)
{
    for (unsigned i = 0; i < s->nr_nodes; i++)
        if (strcmp(s->nodes[i].path, path) == 0)
            return &s->nodes[i];
    return NULL;
}

static int set_node(struct store_sim *s, const char *path, const char *value)
{
    struct sim_node *n = find_node(s, path), *grown;
    char *copy = strdup(value);

    if (!copy)
        return -ENOMEM;
    if (n) {
        free(n->value);
        n->value = copy;
        return 0;
    }
    grown = realloc(s->nodes, (s->nr_nodes + 1) * sizeof(*grown));
    if (!grown || !(grown[s->nr_nodes].path = strdup(path))) {
        if (grown)
            s->nodes = grown;
        free(copy);
        return -ENOMEM;
    }
    s->nodes = grown;
    s->nodes[s->nr_nodes].unreadable = false;
    s->nodes[s->nr_nodes++].value = copy;
    return 0;
}

/* Writing a node creates its missing parents, empty. */
static int make_parents(struct store_sim *s, const char *path)
{
    char *copy = strdup(path), *slash;
    int ret = 0;

    if (!copy)
        return -ENOMEM;
    for (slash = strchr(copy + 1, '/'); slash && !ret;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (!find_node(s, copy))
            ret = set_node(s, copy, "");
        *slash = '/';
    }
    free(copy);
    return ret;
}

/* ---- the seam ----------------------------------------------------------- */

static char *sim_read(struct store *st, const char *path)
{
    struct store_sim *s = sim_of(st);
    struct sim_node *n;
    char *value = NULL;

    pthread_mutex_lock(&s->lock);
    n = find_node(s, path);
    if (n && n->unreadable)
        errno = EACCES;
    else if (n)
        value = strdup(n->value);
    else
        errno = ENOENT;
    pthread_mutex_unlock(&s->lock);
    return value;
}

int store_sim_deny_read(struct store *st, const char *path)
{
    struct store_sim *s = sim_of(st);
    int ret;

    pthread_mutex_lock(&s->lock);
    ret = make_parents(s, path);
    if (!ret && !find_node(s, path))
        ret = set_node(s, path, "");
    if (!ret)
        find_node(s, path)->unreadable = true;
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int sim_write(struct store *st, const char *path, const char *value)
{
    struct store_sim *s = sim_of(st);
    int ret;

    if (path[0] != '/')
        return -EINVAL;
    pthread_mutex_lock(&s->lock);
    ret = make_parents(s, path);
    if (ret == 0)
        ret = set_node(s, path, value);
    if (ret == 0)
        fire_change(s, path);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

int store_sim_write_all(struct store *st, const char *const *paths,
                        const char *const *values, unsigned n)
{
    struct store_sim *s = sim_of(st);
    int ret = 0;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < n && ret == 0; i++) {
        ret = paths[i][0] == '/' ? make_parents(s, paths[i]) : -EINVAL;
        if (ret == 0)
            ret = set_node(s, paths[i], values[i]);
    }
    for (unsigned i = 0; i < n && ret == 0; i++)
        fire_change(s, paths[i]);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

/* The name of `path` when it is a child of `dir`, else NULL. Parents
 * exist as nodes, so every child is found this way exactly once. */
static const char *child_name(const char *path, const char *dir)
{
    const char *rest;

    if (!path_within(path, dir) || strcmp(path, dir) == 0)
        return NULL;
    rest = path + strlen(dir) + 1;
    return strchr(rest, '/') ? NULL : rest;
}

static char **sim_list(struct store *st, const char *path, unsigned *n)
{
    struct store_sim *s = sim_of(st);
    const char **names;
    char **block = NULL;

    pthread_mutex_lock(&s->lock);
    names = calloc(s->nr_nodes + 1, sizeof(*names));
    *n = 0;
    for (unsigned i = 0; names && i < s->nr_nodes; i++) {
        const char *name = child_name(s->nodes[i].path, path);

        if (name)
            names[(*n)++] = name;
    }
    if (!names)
        errno = ENOMEM;
    else if (!find_node(s, path))
        errno = ENOENT;
    else
        block = pack_strings(names, *n);
    pthread_mutex_unlock(&s->lock);
    free(names);
    return block;
}

static int sim_watch(struct store *st, const char *path, const char *token)
{
    struct store_sim *s = sim_of(st);
    struct sim_watch *grown;
    int ret = -ENOMEM;

    pthread_mutex_lock(&s->lock);
    grown = realloc(s->watches, (s->nr_watches + 1) * sizeof(*grown));
    if (grown) {
        s->watches = grown;
        grown[s->nr_watches].path = strdup(path);
        grown[s->nr_watches].token = strdup(token);
        if (grown[s->nr_watches].path && grown[s->nr_watches].token) {
            queue_event(s, path, token); /* xenstored fires new watches */
            s->nr_watches++;
            ret = 0;
        } else {
            free(grown[s->nr_watches].path);
            free(grown[s->nr_watches].token);
        }
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int sim_unwatch(struct store *st, const char *path, const char *token)
{
    struct store_sim *s = sim_of(st);
    int ret = -ENOENT;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->nr_watches; i++) {
        struct sim_watch *w = &s->watches[i];

        if (strcmp(w->path, path) || strcmp(w->token, token))
            continue;
        free(w->path);
        free(w->token);
        *w = s->watches[--s->nr_watches];
        ret = 0;
        break;
    }
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static int sim_fd(struct store *st)
{
    return sim_of(st)->event_fd;
}

static int sim_next_event(struct store *st, char ***block)
{
    struct store_sim *s = sim_of(st);
    struct sim_event *e;
    uint64_t count;

    pthread_mutex_lock(&s->lock);
    e = s->head;
    if (e) {
        s->head = e->next;
        if (!s->head)
            s->tail = &s->head;
    }
    /* Level-triggered loops see the fd readable exactly while events wait. */
    if (!s->head && read(s->event_fd, &count, sizeof(count)) < 0)
        count = 0;
    pthread_mutex_unlock(&s->lock);
    if (!e)
        return 0;
    *block = e->block;
    free(e);
    return 1;
}

static int sim_domain_exists(struct store *st, uint32_t domid)
{
    struct store_sim *s = sim_of(st);
    bool found = false;
    int ret;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->nr_domains; i++)
        found |= s->domains[i] == domid;
    ret = s->unprivileged ? -EACCES : found;
    pthread_mutex_unlock(&s->lock);
    return ret;
}

void store_sim_unprivileged(struct store *st)
{
    struct store_sim *s = sim_of(st);

    pthread_mutex_lock(&s->lock);
    s->unprivileged = true;
    pthread_mutex_unlock(&s->lock);
}

static void sim_close(struct store *st)
{
    struct store_sim *s = sim_of(st);
    char **block;

    while (sim_next_event(st, &block) == 1)
        free(block);
    for (unsigned i = 0; i < s->nr_nodes; i++) {
        free(s->nodes[i].path);
        free(s->nodes[i].value);
    }
    for (unsigned i = 0; i < s->nr_watches; i++) {
        free(s->watches[i].path);
        free(s->watches[i].token);
    }
    free(s->nodes);
    free(s->watches);
    close(s->event_fd);
    pthread_mutex_destroy(&s->lock);
    pthread_cond_destroy(&s->changed);
    free(s);
}

/* As xenstored: the subtree goes, and watches inside it fire. */
static int sim_rm(struct store *st, const char *path)
{
    struct store_sim *s = sim_of(st);
    unsigned kept = 0;
    int ret = -ENOENT;

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->nr_nodes; i++) {
        if (path_within(s->nodes[i].path, path)) {
            free(s->nodes[i].path);
            free(s->nodes[i].value);
            ret = 0;
        } else {
            s->nodes[kept++] = s->nodes[i];
        }
    }
    s->nr_nodes = kept;
    if (ret == 0)
        fire_removal(s, path);
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return ret;
}

static const struct store_ops sim_store_ops = {
    .read = sim_read,
    .write = sim_write,
    .rm = sim_rm,
    .list = sim_list,
    .watch = sim_watch,
    .unwatch = sim_unwatch,
    .fd = sim_fd,
    .next_event = sim_next_event,
    .domain_exists = sim_domain_exists,
    .close = sim_close,
};

struct store *store_sim_create(void)
{
    struct store_sim *s = calloc(1, sizeof(*s));

    if (!s)
        return NULL;
    s->st.ops = &sim_store_ops;
    s->tail = &s->head;
    s->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->event_fd < 0) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    s->domains[s->nr_domains++] = 0;
    return &s->st;
}

/* ---- the test's side ---------------------------------------------------- */

void store_sim_domain_introduce(struct store *st, uint32_t domid)
{
    struct store_sim *s = sim_of(st);

    pthread_mutex_lock(&s->lock);
    if (s->nr_domains < SIM_DOMAINS_MAX)
        s->domains[s->nr_domains++] = domid;
    fire_change(s, "@introduceDomain");
    pthread_mutex_unlock(&s->lock);
}

void store_sim_domain_release(struct store *st, uint32_t domid)
{
    struct store_sim *s = sim_of(st);

    pthread_mutex_lock(&s->lock);
    for (unsigned i = 0; i < s->nr_domains; i++) {
        if (s->domains[i] == domid) {
            s->domains[i] = s->domains[--s->nr_domains];
            break;
        }
    }
    fire_change(s, "@releaseDomain");
    pthread_mutex_unlock(&s->lock);
}

void store_sim_domain_shutdown(struct store *st)
{
    struct store_sim *s = sim_of(st);

    pthread_mutex_lock(&s->lock);
    fire_change(s, "@releaseDomain");
    pthread_mutex_unlock(&s->lock);
}

static bool node_is(struct store_sim *s, const char *path, const char *value)
{
    struct sim_node *n = find_node(s, path);

    return n && strcmp(n->value, value) == 0;
}

int store_sim_wait_value(struct store *st, const char *path,
                         const char *value, unsigned timeout_ms)
{
    struct store_sim *s = sim_of(st);
    struct timespec deadline;
    int ret = 0;

    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->lock);
    while (!node_is(s, path, value) && ret == 0)
        ret = -pthread_cond_timedwait(&s->changed, &s->lock, &deadline);
    pthread_mutex_unlock(&s->lock);
    return ret == -ETIMEDOUT ? ret : 0;
}
