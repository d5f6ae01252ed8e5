/* SPDX-License-Identifier: MIT */
/* Device-tree nodes for xvdm's devices (see dts.h). */
#include "config.h"

#include <inttypes.h>

#include "devspec.h"
#include "dts.h"
#include "guest-layout.h"

/* The guest's GIC: libxl and Xen's dom0less builder give it this phandle
 * (GUEST_PHANDLE_GIC). It is not in the partial tree, so dtc warns "Bad
 * phandle"; the merged tree has it. */
#define DTS_GIC_PHANDLE 65000
/* GIC interrupt specifier: <type number flags>. */
#define DTS_GIC_SPI 0
#define DTS_IRQ_EDGE_RISING 1
/* The grant-dma node's: apart from libxl's own (GUEST_PHANDLE_IOMMU,
 * 65001), which the guest also has when its xl config declares devices
 * with grant_usage=1. */
#define DTS_GRANT_DMA_PHANDLE 65100
/* virtio-scmi's device id (VIRTIO 1.2 §5.17). */
#define DTS_SCMI_DEVICE_ID 32
/* xvdm serves from dom0. */
#define DTS_BACKEND_DOMID 0

/* Devices whose Linux binding gives the virtio,mmio node a child
 * (Documentation/devicetree/bindings/virtio/virtio-device.yaml), as libxl
 * writes it for them: its name and its properties after its compatible
 * "virtio,device<hex id>". */
static const struct {
    uint32_t device_id;
    const char *name;
    const char *properties;
} dts_children[] = {
    /* bindings/i2c/i2c-virtio.yaml: an I2C bus, for the guest's own
     * nodes of the chips on it. */
    {34, "i2c",
     "\t\t\t\t#address-cells = <1>;\n"
     "\t\t\t\t#size-cells = <0>;\n"},
    /* bindings/gpio/gpio-virtio.yaml: a GPIO controller, and an interrupt
     * controller for the guest's nodes of what its lines signal
     * (<&phandle line IRQ_TYPE_*>). */
    {41, "gpio",
     "\t\t\t\tgpio-controller;\n"
     "\t\t\t\t#gpio-cells = <2>;\n"
     "\t\t\t\tinterrupt-controller;\n"
     "\t\t\t\t#interrupt-cells = <2>;\n"},
};

static void dts_print_child(FILE *out, uint32_t device_id)
{
    for (size_t i = 0; i < sizeof(dts_children) / sizeof(dts_children[0]);
         i++) {
        if (dts_children[i].device_id != device_id)
            continue;
        fprintf(out,
                "\t\t\t%s {\n"
                "\t\t\t\tcompatible = \"virtio,device%" PRIx32 "\";\n"
                "%s"
                "\t\t\t};\n",
                dts_children[i].name, device_id, dts_children[i].properties);
    }
}

static void dts_print_node(FILE *out, const struct devspec *s,
                           uint32_t device_id)
{
    fprintf(out,
            "\t\t// %s\n"
            "\t\tvirtio@%" PRIx64 " {\n"
            "\t\t\tcompatible = \"virtio,mmio\";\n"
            "\t\t\treg = <0x%" PRIx64 " 0x%" PRIx64 " 0x0 0x%llx>;\n"
            "\t\t\tinterrupt-parent = <%d>;\n"
            "\t\t\tinterrupts = <%d %" PRIu32 " %d>;\n"
            "\t\t\tdma-coherent;\n",
            s->text, s->base, s->base >> 32, s->base & 0xffffffffu,
            VIRTIO_MMIO_WINDOW_SIZE, DTS_GIC_PHANDLE, DTS_GIC_SPI,
            s->irq - GUEST_LAYOUT_SPI_MIN, DTS_IRQ_EDGE_RISING);
    if (s->grants)
        fprintf(out, "\t\t\tiommus = <%d %d>;\n", DTS_GRANT_DMA_PHANDLE,
                DTS_BACKEND_DOMID);
    dts_print_child(out, device_id);
    fputs("\t\t};\n", out);
}

/* An SCMI platform on the virtio transport (bindings/firmware/
 * arm,scmi.yaml, "arm,scmi-virtio"), its protocols as children: the
 * sensors', whose ids thermal zones name with one cell, and the reset
 * domains', whose ids a device's resets name with one (Linux makes a
 * protocol's driver only for a child it finds). Linux finds the
 * virtio device by its id, not through the tree (the transport has one
 * device). The binding's example has it under /firmware, but libxl copies
 * only /passthrough (and /aliases) from device_tree=, so it is here, a
 * platform device of the simple bus all the same. */
static void dts_print_scmi(FILE *out)
{
    fputs("\t\tscmi {\n"
          "\t\t\tcompatible = \"arm,scmi-virtio\";\n"
          "\t\t\t#address-cells = <1>;\n"
          "\t\t\t#size-cells = <0>;\n"
          "\t\t\tprotocol@15 {\n"
          "\t\t\t\treg = <0x15>;\n"
          "\t\t\t\t#thermal-sensor-cells = <1>;\n"
          "\t\t\t};\n"
          "\t\t\tprotocol@16 {\n"
          "\t\t\t\treg = <0x16>;\n"
          "\t\t\t\t#reset-cells = <1>;\n"
          "\t\t\t};\n"
          "\t\t};\n",
          out);
}

/* What makes Linux use grants for a device (grant_usage=1): its iommus
 * point at a "xen,grant-dma" node with the backend's domain id
 * (Documentation/devicetree/bindings/iommu/xen,grant-dma.yaml). */
static void dts_print_grant_dma(FILE *out)
{
    fprintf(out,
            "\t\txvdm_grant_dma {\n"
            "\t\t\tcompatible = \"xen,grant-dma\";\n"
            "\t\t\t#iommu-cells = <1>;\n"
            "\t\t\tphandle = <%d>;\n"
            "\t\t};\n",
            DTS_GRANT_DMA_PHANDLE);
}

void dts_print(FILE *out, const struct devspec *specs,
               const uint32_t *device_ids, unsigned n)
{
    fputs("/dts-v1/;\n"
          "/* virtio-mmio devices served by xvdm; for xl's device_tree=\n"
          " * option or a dom0less domU node. */\n"
          "/ {\n"
          "\t#address-cells = <2>;\n"
          "\t#size-cells = <2>;\n"
          "\tpassthrough {\n"
          "\t\tcompatible = \"simple-bus\";\n"
          "\t\tranges;\n"
          "\t\t#address-cells = <2>;\n"
          "\t\t#size-cells = <2>;\n",
          out);
    for (unsigned i = 0; i < n; i++)
        dts_print_node(out, &specs[i], device_ids[i]);
    for (unsigned i = 0; i < n; i++) {
        if (device_ids[i] == DTS_SCMI_DEVICE_ID) {
            dts_print_scmi(out);
            break;
        }
    }
    for (unsigned i = 0; i < n; i++) {
        if (specs[i].grants) {
            dts_print_grant_dma(out);
            break;
        }
    }
    fputs("\t};\n};\n", out);
}
