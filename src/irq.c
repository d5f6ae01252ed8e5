/* SPDX-License-Identifier: MIT */
/* Shared, edge-triggered guest interrupt lines (see irq.h for why). */
#include "config.h"

#include "hv.h"
#include "irq.h"

void irq_line_init(struct irq_line *line, struct hv *hv, uint32_t spi)
{
    *line = (struct irq_line){.hv = hv, .spi = spi};
}

static int irq_line_drive(struct irq_line *line, bool level)
{
    int ret = hv_set_irq_level(line->hv, line->spi, level);

    if (ret == 0)
        line->level = level;
    return ret;
}

int irq_line_event(struct irq_line *line, bool was_pending)
{
    int ret;

    if (!was_pending)
        line->asserted++;
    /* The GIC latches edges: an edge while the line is already up is no
     * edge at all, so drop it first and the guest sees this event too. */
    if (line->level) {
        ret = irq_line_drive(line, false);
        if (ret)
            return ret;
    }
    return irq_line_drive(line, true);
}

int irq_line_clear(struct irq_line *line)
{
    if (line->asserted)
        line->asserted--;
    if (line->asserted || !line->level)
        return 0;
    return irq_line_drive(line, false);
}
