/* SPDX-License-Identifier: MIT */
/*
 * The EDID 1.4 base block (VESA E-EDID, 128 bytes) an output answers
 * GET_EDID with: a digital display whose preferred and only detailed
 * timing is xres x yres with CVT reduced-blanking horizontals, named
 * "xvdm", its size that of 96 pixels per inch.
 */
#include <string.h>

#include "gpu.h"

#define EDID_HBLANK 160 /* CVT-RB: front porch 48, sync 32, back porch 80 */
#define EDID_HFRONT 48
#define EDID_HSYNC 32
#define EDID_VBLANK 35 /* front porch 3, sync 6, back porch 26 */
#define EDID_VFRONT 3
#define EDID_VSYNC 6
#define EDID_REFRESH 60
#define EDID_DESC 54 /* the four 18-byte descriptors start here */

/* sRGB's primaries and white point, in 1/1024ths: red, green, blue,
 * white, x then y. */
static const uint16_t edid_chroma[8] = {655, 338, 307, 614, 154, 61, 320, 337};

static void edid_header(uint8_t *e)
{
    static const uint8_t head[] = {0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0};

    memcpy(e, head, sizeof(head));
    e[8] = 0x62; /* "XVD": three 5-bit letters, big-endian */
    e[9] = 0xc4;
    e[10] = 1;  /* product code */
    e[17] = 36; /* made in 2026 */
    e[18] = 1;  /* version 1.4 */
    e[19] = 4;
}

static void edid_basic(uint8_t *e, uint32_t xres, uint32_t yres)
{
    e[20] = 0xa0;                                  /* digital, 8 bits */
    e[21] = (uint8_t)((xres * 254 + 4800) / 9600); /* cm at 96 dpi */
    e[22] = (uint8_t)((yres * 254 + 4800) / 9600);
    e[23] = 120;  /* gamma 2.2 */
    e[24] = 0x06; /* sRGB; the first timing is the preferred one */
    e[25] = (uint8_t)((edid_chroma[0] & 3) << 6 | (edid_chroma[1] & 3) << 4 |
                      (edid_chroma[2] & 3) << 2 | (edid_chroma[3] & 3));
    e[26] = (uint8_t)((edid_chroma[4] & 3) << 6 | (edid_chroma[5] & 3) << 4 |
                      (edid_chroma[6] & 3) << 2 | (edid_chroma[7] & 3));
    for (unsigned i = 0; i < 8; i++)
        e[27 + i] = (uint8_t)(edid_chroma[i] >> 2);
    for (unsigned i = 38; i < 54; i++) /* standard timings: unused */
        e[i] = 1;
}

/* Pixel clock in 10 kHz, at most what the field holds: a large mode's
 * refresh falls below 60 Hz rather than overflow it. */
static uint16_t edid_clock(uint32_t xres, uint32_t yres)
{
    uint64_t hz =
        (uint64_t)(xres + EDID_HBLANK) * (yres + EDID_VBLANK) * EDID_REFRESH;
    uint64_t clock = (hz + 5000) / 10000;

    return clock > 0xffff ? 0xffff : (uint16_t)clock;
}

static void edid_timing(uint8_t *d, uint32_t xres, uint32_t yres)
{
    uint32_t wmm = (xres * 254 + 480) / 960, hmm = (yres * 254 + 480) / 960;
    uint16_t clock = edid_clock(xres, yres);

    d[0] = (uint8_t)clock;
    d[1] = (uint8_t)(clock >> 8);
    d[2] = (uint8_t)xres;
    d[3] = EDID_HBLANK & 0xff;
    d[4] = (uint8_t)((xres >> 8) << 4 | EDID_HBLANK >> 8);
    d[5] = (uint8_t)yres;
    d[6] = EDID_VBLANK;
    d[7] = (uint8_t)((yres >> 8) << 4);
    d[8] = EDID_HFRONT;
    d[9] = EDID_HSYNC;
    d[10] = EDID_VFRONT << 4 | EDID_VSYNC;
    d[12] = (uint8_t)wmm;
    d[13] = (uint8_t)hmm;
    d[14] = (uint8_t)((wmm >> 8) << 4 | (hmm >> 8));
    d[17] = 0x1a; /* digital separate sync, +hsync -vsync (CVT-RB) */
}

/* A display descriptor: tag 0xfc, the name, or 0x10, none. */
static void edid_descriptor(uint8_t *d, uint8_t tag, const char *text)
{
    d[3] = tag;
    if (!text)
        return;
    memset(d + 5, ' ', 13);
    memcpy(d + 5, text, strlen(text));
    d[5 + strlen(text)] = '\n';
}

void gpu_edid_build(uint8_t edid[GPU_EDID_SIZE], uint32_t xres, uint32_t yres)
{
    uint8_t sum = 0;

    memset(edid, 0, GPU_EDID_SIZE);
    edid_header(edid);
    edid_basic(edid, xres, yres);
    edid_timing(edid + EDID_DESC, xres, yres);
    edid_descriptor(edid + EDID_DESC + 18, 0xfc, "xvdm");
    edid_descriptor(edid + EDID_DESC + 36, 0x10, NULL);
    edid_descriptor(edid + EDID_DESC + 54, 0x10, NULL);
    for (unsigned i = 0; i < GPU_EDID_SIZE - 1; i++)
        sum += edid[i];
    edid[GPU_EDID_SIZE - 1] = (uint8_t)(0x100 - sum);
}
