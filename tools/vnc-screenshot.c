/* SPDX-License-Identifier: MIT */
/*
 * vnc-screenshot [--type TEXT] ADDR FILE [PASSWORD-FILE]: what a VNC
 * server (a gpu device's vnc=) shows now, as a PNG, or as a binary PPM
 * when FILE ends in .ppm (a file a script without a PNG reader compares
 * with cmp), for scripts and tests. ADDR is unix:PATH or HOST:PORT; the
 * password, when the server asks for one, is the first line of
 * PASSWORD-FILE. One full framebuffer update is asked for, in lossless
 * encodings only, and written as 8-bit RGB. --type TEXT first types
 * TEXT as the viewer's keyboard would: each character pressed and
 * released (a newline is Return).
 */
#define _GNU_SOURCE
#include <getopt.h>
#include <png.h>
#include <rfb/rfbclient.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A server that says nothing for this long has failed. */
#define SHOT_WAIT_US 10000000

static const char *shot_password_file;
static bool shot_pixels, shot_done;

static void shot_quiet(const char *format, ...)
{
}

static void shot_got(rfbClient *c, int x, int y, int w, int h)
{
    shot_pixels = true;
}

/* An update of pseudo-rectangles alone (the screen's size, say) may come
 * first: the one asked for is the first with pixels. */
static void shot_finished(rfbClient *c)
{
    shot_done = shot_pixels;
}

/* The first line of the password file, which libvncclient frees; NULL
 * when there is none (it then gives up, and would not free ""). */
static char *shot_password(rfbClient *c)
{
    FILE *f = shot_password_file ? fopen(shot_password_file, "re") : NULL;
    char *line = NULL;
    size_t cap = 0;
    ssize_t len = f ? getline(&line, &cap, f) : -1;

    if (f)
        fclose(f);
    if (len < 0) {
        fprintf(stderr, "vnc-screenshot: the server asks for a password%s\n",
                shot_password_file ? ", and the file has none" : "");
        free(line);
        return NULL;
    }
    line[strcspn(line, "\r\n")] = '\0';
    return line;
}

/* unix:PATH (libvncclient takes a host that is a socket file as one) or
 * HOST:PORT. */
static bool shot_address(rfbClient *c, const char *addr)
{
    const char *colon = strrchr(addr, ':');
    char *end;
    long port;

    free(c->serverHost); /* rfbGetClient()'s "" */
    c->serverHost = NULL;
    if (strncmp(addr, "unix:", 5) == 0) {
        c->serverHost = strdup(addr + 5);
        return c->serverHost != NULL;
    }
    if (!colon || colon == addr)
        return false;
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return false;
    c->serverHost = strndup(addr, (size_t)(colon - addr));
    c->serverPort = (int)port;
    return c->serverHost != NULL;
}

static rfbClient *shot_client(const char *addr)
{
    rfbClient *c = rfbGetClient(8, 3, 4);

    if (!c)
        return NULL;
    c->appData.encodingsString = "zrle hextile raw";
    c->appData.enableJPEG = FALSE;
    c->GetPassword = shot_password;
    c->GotFrameBufferUpdate = shot_got;
    c->FinishedFrameBufferUpdate = shot_finished;
    if (!shot_address(c, addr)) {
        fprintf(stderr, "vnc-screenshot: '%s' is not unix:PATH or HOST:PORT\n",
                addr);
        rfbClientCleanup(c);
        return NULL;
    }
    /* On failure it has said why and freed c. */
    return rfbInitClient(c, NULL, NULL) ? c : NULL;
}

/* The update rfbInitClient() asked for, whole. */
static bool shot_take(rfbClient *c)
{
    while (!shot_done) {
        int n = WaitForMessage(c, SHOT_WAIT_US);

        if (n <= 0 || !HandleRFBServerMessage(c)) {
            fprintf(stderr, "vnc-screenshot: %s\n",
                    n == 0 ? "no update from the server" : "the server left");
            return false;
        }
    }
    return true;
}

/* The client's pixels as 8-bit RGB, by its pixel format's shifts. */
static unsigned char *shot_rgb(const rfbClient *c)
{
    size_t n = (size_t)c->width * c->height;
    unsigned char *rgb = malloc(n * 3);

    for (size_t i = 0; rgb && i < n; i++) {
        uint32_t p;

        memcpy(&p, c->frameBuffer + i * 4, sizeof(p));
        rgb[i * 3] = (unsigned char)(p >> c->format.redShift);
        rgb[i * 3 + 1] = (unsigned char)(p >> c->format.greenShift);
        rgb[i * 3 + 2] = (unsigned char)(p >> c->format.blueShift);
    }
    return rgb;
}

static bool shot_write_png(const rfbClient *c, const unsigned char *rgb,
                           const char *file)
{
    png_image png = {.version = PNG_IMAGE_VERSION,
                     .width = (png_uint_32)c->width,
                     .height = (png_uint_32)c->height,
                     .format = PNG_FORMAT_RGB};

    if (png_image_write_to_file(&png, file, 0, rgb, 0, NULL))
        return true;
    fprintf(stderr, "vnc-screenshot: cannot write %s: %s\n", file, png.message);
    return false;
}

/* Binary PPM (P6): a header and the RGB bytes as they are. */
static bool shot_write_ppm(const rfbClient *c, const unsigned char *rgb,
                           const char *file)
{
    FILE *f = fopen(file, "we");
    size_t n = (size_t)c->width * c->height * 3;
    bool ok = f && fprintf(f, "P6\n%d %d\n255\n", c->width, c->height) > 0 &&
              fwrite(rgb, 1, n, f) == n;

    if (f && fclose(f) != 0)
        ok = false;
    if (!ok)
        fprintf(stderr, "vnc-screenshot: cannot write %s: %m\n", file);
    return ok;
}

static bool shot_is_ppm(const char *file)
{
    size_t len = strlen(file);

    return len >= 4 && strcmp(file + len - 4, ".ppm") == 0;
}

static bool shot_write(const rfbClient *c, const char *file)
{
    unsigned char *rgb = shot_rgb(c);
    bool ok;

    if (!rgb) {
        fprintf(stderr, "vnc-screenshot: out of memory\n");
        return false;
    }
    ok = shot_is_ppm(file) ? shot_write_ppm(c, rgb, file)
                           : shot_write_png(c, rgb, file);
    free(rgb);
    return ok;
}

/* The keysym a character of --type's TEXT is: printable ASCII is its own
 * (X keysyms are Latin-1 there), a newline Return; 0 for anything else. */
static rfbKeySym shot_keysym(unsigned char ch)
{
    if (ch == '\n')
        return XK_Return;
    return ch >= 0x20 && ch < 0x7f ? ch : 0;
}

static bool shot_can_type(const char *text)
{
    for (const char *p = text; *p; p++)
        if (!shot_keysym((unsigned char)*p)) {
            fprintf(stderr, "vnc-screenshot: --type takes printable ASCII "
                            "and newlines only\n");
            return false;
        }
    return true;
}

static bool shot_type(rfbClient *c, const char *text)
{
    for (const char *p = text; *p; p++) {
        rfbKeySym k = shot_keysym((unsigned char)*p);

        if (!SendKeyEvent(c, k, TRUE) || !SendKeyEvent(c, k, FALSE)) {
            fprintf(stderr, "vnc-screenshot: the server left\n");
            return false;
        }
    }
    return true;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        {"type", required_argument, NULL, 't'}, {NULL, 0, NULL, 0}};
    const char *text = "";
    rfbClient *c;
    bool ok;
    int opt;

    while ((opt = getopt_long(argc, argv, "+", options, NULL)) == 't')
        text = optarg;
    argc -= optind;
    argv += optind;
    if (opt != -1 || (argc != 2 && argc != 3)) {
        fprintf(stderr, "usage: vnc-screenshot [--type TEXT] "
                        "unix:PATH|HOST:PORT FILE.png|FILE.ppm "
                        "[PASSWORD-FILE]\n");
        return 2;
    }
    if (!shot_can_type(text))
        return 2;
    shot_password_file = argc == 3 ? argv[2] : NULL;
    rfbClientLog = shot_quiet;
    c = shot_client(argv[0]);
    if (!c)
        return 1;
    ok = shot_type(c, text) && shot_take(c) && shot_write(c, argv[1]);
    free(c->frameBuffer); /* libvncclient leaves it to its caller */
    rfbClientCleanup(c);
    return ok ? 0 : 1;
}
