/* SPDX-License-Identifier: MIT */
/* One guest served: devices and their transports, the ioreq server and
 * its windows. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "dev.h"
#include "devspec.h"
#include "guest-layout.h"
#include "hv.h"
#include "ioreq.h"
#include "log.h"
#include "loop.h"
#include "mmio-fast.h"
#include "module.h"
#include "transport-mmio.h"
#include "vm.h"

struct vm_device {
    struct module mod;
    struct xvdm_dev *dev;
    struct gaccess ga;
    struct mmio mmio;
    uint64_t base;
    uint32_t irq;
};

struct vm {
    struct hv *hv;
    struct loop *loop;
    struct store *store;
    struct gbudget budget; /* the guest's granted pages, every device's */
    bool budget_watched;
    struct ioreq_dispatch ioreq;
    bool ioreq_ready;   /* dispatch initialised: windows may be mapped */
    bool server_enabled;
    unsigned nr_devs;
    struct vm_device *devs;
};

static int vm_device_create(struct vm *vm, const struct devspec *specs,
                            unsigned i, const char *module_dir)
{
    struct vm_device *d = &vm->devs[i];
    const struct devspec *spec = &specs[i];
    char err[512];
    int ret;

    ret = module_load(&d->mod, module_dir, spec->type, err, sizeof(err));
    if (ret) {
        log_err("--device '%s': %s", spec->text, err);
        return ret;
    }
    vm->nr_devs = i + 1; /* from here on, vm_destroy() unloads it */
    ret = dev_create(&d->dev, d->mod.ops, &spec->opts,
                     devspec_type_index(specs, i), vm->hv->domid, vm->loop,
                     vm->store, spec->node);
    if (ret) {
        /* The device's own line said why; this one says which device, as
         * the user declared it (a xenstore directory names the guest). */
        log_err("'%s': %s device not set up (%u option(s) given)",
                spec->text, spec->type, spec->opts.nr);
        return ret;
    }
    d->base = spec->base;
    d->irq = spec->irq;
    d->ga = spec->grants
                ? (struct gaccess){.hv = vm->hv, .budget = &vm->budget}
                : (struct gaccess){.ram = &vm->hv->mem};
    mmio_init(&d->mmio, d->dev, &d->ga, vm->hv, spec->irq, spec->base);
    return 0;
}

static int vm_map_windows(struct vm *vm)
{
    int ret;

    ret = hv_ioreq_server_create(vm->hv);
    if (ret) {
        log_err("cannot create the ioreq server: %s", strerror(-ret));
        return ret;
    }
    ioreq_dispatch_init(&vm->ioreq, vm->hv);
    vm->ioreq_ready = true;
    for (unsigned i = 0; i < vm->nr_devs; i++) {
        struct vm_device *d = &vm->devs[i];
        struct ioreq_range r = {.base = d->base,
                                .size = VIRTIO_MMIO_WINDOW_SIZE,
                                .window = &d->mmio};

        ret = ioreq_add_range(&vm->ioreq, &r);
        if (ret) {
            log_err("%scannot map window 0x%" PRIx64 ": %s",
                    d->dev->prefix, d->base, strerror(-ret));
            return ret;
        }
    }
    return 0;
}

static int vm_start(struct vm *vm)
{
    int ret;

    ret = ioreq_dispatch_start(&vm->ioreq, vm->loop);
    if (ret)
        return ret;
    ret = hv_set_server_state(vm->hv, true);
    if (ret) {
        log_err("cannot enable the ioreq server: %s", strerror(-ret));
        return ret;
    }
    vm->server_enabled = true;
    /* The ioeventfds need the ports, which Xen gives only once the server
     * is enabled: a kick written before they are assigned is answered by
     * ioreq_serve_waiting(), one written after by the host. */
    for (unsigned i = 0; i < vm->nr_devs && ret == 0; i++)
        ret = mmio_fast_start(&vm->devs[i].mmio, vm->loop);
    if (ret) {
        log_err("cannot set up the fast path: %s", strerror(-ret));
        return ret;
    }
    return ioreq_serve_waiting(&vm->ioreq);
}

/* Pages came back to the guest's budget: queues that waited go again. */
static void vm_on_pages_back(void *arg, uint32_t revents)
{
    struct vm *vm = arg;
    uint64_t count;

    if (read(vm->budget.wake_fd, &count, sizeof(count)) < 0)
        return;
    for (unsigned i = 0; i < vm->nr_devs; i++)
        virtio_queue_unstarve(vm->devs[i].dev);
}

static int vm_watch_budget(struct vm *vm, uint64_t grant_pages)
{
    int ret = gbudget_init(&vm->budget, grant_pages);

    if (ret == 0)
        ret = loop_watch(vm->loop, vm->budget.wake_fd, EPOLLIN,
                         vm_on_pages_back, vm);
    vm->budget_watched = ret == 0;
    return ret;
}

int vm_create(struct vm **out, struct hv *hv, struct loop *loop,
              struct store *store, const struct devspec *specs, unsigned n,
              const struct vm_options *opts)
{
    struct vm *vm;
    int ret = -ENOMEM;

    vm = calloc(1, sizeof(*vm));
    if (!vm)
        return -ENOMEM;
    vm->hv = hv;
    vm->loop = loop;
    vm->store = store;
    vm->budget.wake_fd = -1;
    ret = vm_watch_budget(vm, opts->grant_pages ? opts->grant_pages
                                                : GBUDGET_DEFAULT_PAGES);
    if (ret)
        goto fail;
    ret = -ENOMEM;
    vm->devs = calloc(n ? n : 1, sizeof(*vm->devs));
    if (!vm->devs)
        goto fail;
    for (unsigned i = 0; i < n; i++) {
        ret = vm_device_create(vm, specs, i, opts->module_dir);
        if (ret)
            goto fail;
    }
    ret = vm_map_windows(vm);
    if (ret)
        goto fail;
    ret = vm_start(vm);
    if (ret)
        goto fail;
    for (unsigned i = 0; i < vm->nr_devs; i++)
        log_info("%svirtio device %u at 0x%" PRIx64 ", SPI %u",
                 vm->devs[i].dev->prefix, vm->devs[i].mod.ops->device_id,
                 vm->devs[i].base, vm->devs[i].irq);
    *out = vm;
    return 0;
fail:
    vm_destroy(vm);
    return ret;
}

void vm_destroy(struct vm *vm)
{
    if (!vm)
        return;
    /* The host keeps ioeventfds past our close: undo them first. */
    for (unsigned i = 0; i < vm->nr_devs; i++)
        if (vm->devs[i].mmio.dev) /* mmio_init() done */
            mmio_fast_stop(&vm->devs[i].mmio);
    if (vm->server_enabled) {
        int ret = hv_set_server_state(vm->hv, false);
        if (ret)
            log_warn("cannot disable the ioreq server: %s", strerror(-ret));
    }
    for (unsigned i = 0; i < vm->nr_devs; i++)
        dev_destroy(vm->devs[i].dev);
    if (vm->ioreq_ready)
        ioreq_dispatch_fini(&vm->ioreq);
    for (unsigned i = 0; vm->devs && i < vm->nr_devs; i++)
        module_unload(&vm->devs[i].mod);
    if (vm->budget_watched)
        loop_unwatch(vm->loop, vm->budget.wake_fd);
    gbudget_fini(&vm->budget);
    free(vm->devs);
    free(vm);
}

void vm_log_counters(const struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_devs; i++)
        mmio_log_counters(&vm->devs[i].mmio);
}

void vm_log_ioreq_slots(const struct vm *vm)
{
    if (vm->ioreq_ready)
        ioreq_log_slots(&vm->ioreq);
}

void vm_reload(struct vm *vm)
{
    for (unsigned i = 0; i < vm->nr_devs; i++)
        dev_reload(vm->devs[i].dev);
}

struct xvdm_dev *vm_device(const struct vm *vm, unsigned i)
{
    return i < vm->nr_devs ? vm->devs[i].dev : NULL;
}
