/* SPDX-License-Identifier: MIT */
/* Device modules: TYPE.so in a directory, dlopen'ed and checked. */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "module.h"

/* libFuzzer registers an instrumented module's coverage counters when it
 * is loaded and reads them after every input, so under the fuzzer a
 * module unloaded must stay mapped. */
#ifdef XVDM_FUZZING
#define MODULE_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE)
#else
#define MODULE_DLOPEN_FLAGS (RTLD_NOW | RTLD_LOCAL)
#endif

const char *module_default_dir(void)
{
    const char *dir = getenv("XVDM_MODULE_DIR");

    return dir && *dir ? dir : MODULEDIR;
}

static bool module_name_ok(const char *type)
{
    size_t len = strlen(type);

    return len > 0 && len < 64 &&
           strspn(type, "abcdefghijklmnopqrstuvwxyz0123456789-_") == len;
}

/* Length of the type name when `name` is a module file (TYPE.so), else 0.
 * Other files there, such as a module's own libraries (blk+rbd.so), are
 * not modules. */
static size_t module_file_type_len(const char *name)
{
    size_t len = strlen(name);
    char type[64];

    if (len <= 3 || len - 3 >= sizeof(type) ||
        strcmp(name + len - 3, ".so") != 0)
        return 0;
    memcpy(type, name, len - 3);
    type[len - 3] = '\0';
    return module_name_ok(type) ? len - 3 : 0;
}

/* "a, b, c": the modules dir holds, for an unknown-type message. */
static void module_names(const char *dir, char *buf, size_t size)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    size_t used = 0;

    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        size_t len = module_file_type_len(name);

        if (len && used < size)
            used += (size_t)snprintf(buf + used, size - used, "%s%.*s",
                                     used ? ", " : "", (int)len, name);
        free(list[i]);
    }
    if (n >= 0)
        free(list);
}

/* A module is code we did not write: check its table like input. */
static int module_check(const struct xvdm_device_ops *ops, const char *type,
                        char *err, size_t errlen)
{
    if (ops->abi_version < XVDM_DEVICE_ABI_VERSION_MIN ||
        ops->abi_version > XVDM_DEVICE_ABI_VERSION) {
        snprintf(err, errlen,
                 "device module '%s' has ABI version %u, this "
                 "xvdm needs %u (or an older one down to %u; rebuild the "
                 "module)",
                 type, ops->abi_version, XVDM_DEVICE_ABI_VERSION,
                 XVDM_DEVICE_ABI_VERSION_MIN);
        return -EINVAL;
    }
    if (!ops->name || strcmp(ops->name, type) != 0 || !ops->create ||
        !ops->destroy || !ops->queue_notify || !ops->reset) {
        snprintf(err, errlen, "device module '%s' lacks its name or a "
                 "required operation", type);
        return -EINVAL;
    }
    return 0;
}

int module_load(struct module *mod, const char *dir, const char *type,
                char *err, size_t errlen)
{
    char path[4096], names[512];
    int ret;

    memset(mod, 0, sizeof(*mod));
    if (!module_name_ok(type)) {
        snprintf(err, errlen, "'%s' is not a device type name", type);
        return -EINVAL;
    }
    snprintf(path, sizeof(path), "%s/%s.so", dir, type);
    if (access(path, F_OK) != 0) {
        module_names(dir, names, sizeof(names));
        snprintf(err, errlen, "unknown device type '%s' (in %s: %s)", type,
                 dir, names[0] ? names : "no modules");
        return -ENOENT;
    }
    mod->handle = dlopen(path, MODULE_DLOPEN_FLAGS);
    if (!mod->handle) {
        snprintf(err, errlen, "cannot load %s: %s", path, dlerror());
        return -EINVAL;
    }
    mod->ops = dlsym(mod->handle, XVDM_DEVICE_SYMBOL);
    if (!mod->ops) {
        snprintf(err, errlen, "%s does not export %s", path,
                 XVDM_DEVICE_SYMBOL);
        ret = -EINVAL;
    } else {
        ret = module_check(mod->ops, type, err, errlen);
    }
    if (ret)
        module_unload(mod);
    return ret;
}

void module_unload(struct module *mod)
{
    if (mod->handle)
        dlclose(mod->handle);
    memset(mod, 0, sizeof(*mod));
}

/* Load every module of dir in name order and call fn with its ops, or
 * with NULL ops and the reason it does not load. Returns how many loaded,
 * or a negative errno when dir cannot be read. */
static int module_each(const char *dir,
                       void (*fn)(void *arg, const char *type,
                                  const struct xvdm_device_ops *ops,
                                  const char *err),
                       void *arg)
{
    struct dirent **list;
    int n = scandir(dir, &list, NULL, alphasort);
    int loaded = 0;

    if (n < 0)
        return -errno;
    for (int i = 0; i < n; i++) {
        char *name = list[i]->d_name, err[512];
        size_t len = module_file_type_len(name);
        struct module mod;

        if (len) {
            name[len] = '\0';
            if (module_load(&mod, dir, name, err, sizeof(err)) == 0) {
                fn(arg, name, mod.ops, NULL);
                module_unload(&mod);
                loaded++;
            } else {
                fn(arg, name, NULL, err);
            }
        }
        free(list[i]);
    }
    free(list);
    return loaded;
}

static void module_print(void *arg, const char *type,
                         const struct xvdm_device_ops *ops, const char *err)
{
    FILE *out = arg;

    if (!ops) {
        fprintf(out, "%-10s (not loadable: %s)\n", type, err);
        return;
    }
    fprintf(out, "%-10s virtio id %-3u %s\n", ops->name, ops->device_id,
            ops->summary ? ops->summary : "");
    for (const char *const *o = ops->options; o && *o; o++)
        fprintf(out, "           %s\n", *o);
}

int module_list(const char *dir, FILE *out)
{
    return module_each(dir, module_print, out);
}

struct module_search {
    uint32_t device_id;
    char *type;
    size_t len;
    bool found;
};

static void module_match_id(void *arg, const char *type,
                            const struct xvdm_device_ops *ops,
                            const char *err)
{
    struct module_search *s = arg;

    if (ops && !s->found && ops->device_id == s->device_id) {
        snprintf(s->type, s->len, "%s", type);
        s->found = true;
    }
}

int module_find_id(const char *dir, uint32_t device_id, char *type,
                   size_t len)
{
    struct module_search s = {device_id, type, len, false};
    int ret = module_each(dir, module_match_id, &s);

    if (ret < 0)
        return ret;
    return s.found ? 0 : -ENOENT;
}
