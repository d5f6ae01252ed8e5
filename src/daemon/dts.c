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
/* xvdm serves from dom0. */
#define DTS_BACKEND_DOMID 0

static void dts_print_node(FILE *out, const struct devspec *s)
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
    fputs("\t\t};\n", out);
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

void dts_print(FILE *out, const struct devspec *specs, unsigned n)
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
        dts_print_node(out, &specs[i]);
    for (unsigned i = 0; i < n; i++) {
        if (specs[i].grants) {
            dts_print_grant_dma(out);
            break;
        }
    }
    fputs("\t};\n};\n", out);
}
