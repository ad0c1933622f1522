/*
 * play rtmp://HOST[:PORT]/APP/STREAM OUT.flv SECONDS
 *
 * Plays a stream with libsrsd_rtmp for SECONDS seconds and writes what arrived to OUT.flv.
 * Exit status 0 when at least one tag arrived.
 */
#include "srsd_rtmp.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static uint64_t now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000;
}

static void put24(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 16);
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)v;
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s rtmp://HOST[:PORT]/APP/STREAM OUT.flv SECONDS\n", argv[0]);
        return 2;
    }
    int seconds = atoi(argv[3]);
    if (seconds <= 0) {
        fprintf(stderr, "SECONDS must be a positive number\n");
        return 2;
    }
    srsd_rtmp_t *h = srsd_rtmp_create(argv[1]);
    if (!h) {
        fprintf(stderr, "%s: bad RTMP URL\n", argv[1]);
        return 2;
    }
    int rc = srsd_rtmp_connect(h, 5000);
    if (rc == 0) rc = srsd_rtmp_play(h, 5000);
    if (rc != 0) {
        fprintf(stderr, "play %s: %s: %s\n", argv[1], srsd_rtmp_strerror(rc),
                srsd_rtmp_last_error(h));
        srsd_rtmp_destroy(h);
        return 1;
    }
    FILE *out = fopen(argv[2], "wb");
    if (!out) {
        perror(argv[2]);
        srsd_rtmp_destroy(h);
        return 1;
    }
    /* FLV header: audio and video, data offset 9; PreviousTagSize0. */
    static const uint8_t header[13] = {'F', 'L', 'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0};
    fwrite(header, 1, sizeof header, out);

    uint64_t deadline = now_ms() + (uint64_t)seconds * 1000;
    unsigned long tags = 0;
    for (;;) {
        uint64_t now = now_ms();
        if (now >= deadline) break;
        int type = 0;
        uint32_t ts = 0;
        uint8_t *data = NULL;
        size_t size = 0;
        rc = srsd_rtmp_read_tag(h, &type, &ts, &data, &size, (int)(deadline - now));
        if (rc == SRSD_RTMP_ERR_TIMEOUT) continue;
        if (rc != 0) {
            fprintf(stderr, "read: %s: %s\n", srsd_rtmp_strerror(rc), srsd_rtmp_last_error(h));
            break;
        }
        uint8_t th[11] = {0};
        th[0] = (uint8_t)type;
        put24(th + 1, (uint32_t)size);
        put24(th + 4, ts & 0xffffff);
        th[7] = (uint8_t)(ts >> 24);
        uint32_t prev = (uint32_t)size + 11;
        uint8_t pv[4] = {(uint8_t)(prev >> 24), (uint8_t)(prev >> 16), (uint8_t)(prev >> 8),
                         (uint8_t)prev};
        fwrite(th, 1, sizeof th, out);
        fwrite(data, 1, size, out);
        fwrite(pv, 1, sizeof pv, out);
        srsd_rtmp_free(data);
        tags++;
    }
    fclose(out);
    srsd_rtmp_destroy(h);
    printf("played %lu tags\n", tags);
    return tags > 0 ? 0 : 1;
}
