/* SPDX-License-Identifier: MIT */
/* Shared, edge-triggered guest interrupt lines (see irq.h for why). */
#include "config.h"

#include "hv.h"
#include "irq.h"

void irq_line_init(struct irq_line *line, struct hv *hv, uint32_t spi)
{
    *line = (struct irq_line){.hv = hv, .spi = spi};
}

int irq_line_event(struct irq_line *line)
{
    return hv_set_irq_level(line->hv, line->spi, 1);
}
