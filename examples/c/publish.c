/*
 * publish FILE.flv rtmp://HOST[:PORT]/APP/STREAM
 *
 * Publishes the tags of an FLV file once, in real time (each tag is sent when its timestamp
 * is due), with libsrsd_rtmp. Exit status 0 when the whole file was sent.
 */
#include "srsd_rtmp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void sleep_until(uint64_t at_ms) {
    uint64_t now = now_ms();
    if (at_ms <= now) return;
    uint64_t d = at_ms - now;
    struct timespec t = {(time_t)(d / 1000), (long)(d % 1000) * 1000000};
    while (nanosleep(&t, &t) != 0 && errno == EINTR) {
    }
}

static uint32_t be24(const uint8_t *p) { return (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2]; }

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: %s FILE.flv rtmp://HOST[:PORT]/APP/STREAM\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) {
        perror(argv[1]);
        return 1;
    }
    uint8_t head[11];
    if (fread(head, 1, 9, f) != 9 || memcmp(head, "FLV", 3) != 0) {
        fprintf(stderr, "%s: not an FLV file\n", argv[1]);
        fclose(f);
        return 1;
    }
    uint32_t offset = (uint32_t)head[5] << 24 | be24(head + 6);
    /* The body starts at the header's data offset, after PreviousTagSize0. */
    if (offset < 9 || fseek(f, (long)offset + 4, SEEK_SET) != 0) {
        fprintf(stderr, "%s: bad FLV header\n", argv[1]);
        fclose(f);
        return 1;
    }

    srsd_rtmp_t *h = srsd_rtmp_create(argv[2]);
    if (!h) {
        fprintf(stderr, "%s: bad RTMP URL\n", argv[2]);
        fclose(f);
        return 2;
    }
    int rc = srsd_rtmp_connect(h, 5000);
    if (rc == 0) rc = srsd_rtmp_publish(h, 5000);
    if (rc != 0) {
        fprintf(stderr, "publish %s: %s: %s\n", argv[2], srsd_rtmp_strerror(rc),
                srsd_rtmp_last_error(h));
        srsd_rtmp_destroy(h);
        fclose(f);
        return 1;
    }

    uint64_t start = now_ms();
    int have_first = 0;
    uint32_t first = 0;
    unsigned long tags = 0;
    uint8_t *body = NULL;
    for (;;) {
        if (fread(head, 1, 11, f) != 11) break; /* end of file (or a cut tag header) */
        int type = head[0] & 0x1f;
        uint32_t size = be24(head + 1);
        uint32_t ts = be24(head + 4) | (uint32_t)head[7] << 24;
        body = malloc(size ? size : 1);
        if (!body || fread(body, 1, size, f) != size) break; /* a cut tag ends the file */
        if (fseek(f, 4, SEEK_CUR) != 0) break;               /* PreviousTagSize */
        if (type == SRSD_RTMP_TAG_AUDIO || type == SRSD_RTMP_TAG_VIDEO ||
            type == SRSD_RTMP_TAG_SCRIPT) {
            if (!have_first) {
                first = ts;
                have_first = 1;
            }
            uint32_t rel = ts - first;
            sleep_until(start + rel);
            if (size > 0) {
                rc = srsd_rtmp_write_tag(h, type, rel, body, size);
                if (rc != 0) {
                    fprintf(stderr, "write: %s: %s\n", srsd_rtmp_strerror(rc),
                            srsd_rtmp_last_error(h));
                    break;
                }
                tags++;
            }
        }
        free(body);
        body = NULL;
    }
    free(body);
    fclose(f);
    srsd_rtmp_destroy(h);
    printf("published %lu tags\n", tags);
    return rc == 0 ? 0 : 1;
}
