/*
 * libsrsd_rtmp - a blocking RTMP client library for C (srs-librtmp's successor).
 *
 * Built from clib/ in the srsd repository:
 *     cargo build --release -p srsd_rtmp
 * gives target/release/libsrsd_rtmp.a (static) and libsrsd_rtmp.so (shared). Link the static
 * library with -lpthread -ldl -lm, e.g.
 *     cc -Iinclude app.c target/release/libsrsd_rtmp.a -lpthread -ldl -lm -o app
 *
 * Usage: create a handle for a URL, connect, then publish (and write) or play (and read),
 * finally destroy it:
 *
 *     srsd_rtmp_t *h = srsd_rtmp_create("rtmp://127.0.0.1/live/livestream");
 *     if (!h) ...bad URL...
 *     if (srsd_rtmp_connect(h, 5000) != 0 || srsd_rtmp_publish(h, 5000) != 0)
 *         fprintf(stderr, "%s\n", srsd_rtmp_last_error(h));
 *     srsd_rtmp_write_tag(h, SRSD_RTMP_TAG_VIDEO, 40, body, body_len);
 *     srsd_rtmp_destroy(h);
 *
 * Units: timestamps are milliseconds on RTMP's 32-bit timeline (they wrap after 49.7 days);
 * timeouts are milliseconds, and 0 or a negative value means the default (30 s).
 *
 * Blocking: every call blocks the calling thread until it is done or its timeout passed. Each
 * handle runs its own small single-threaded runtime inside; nothing runs in the background
 * between calls (the server's pings are answered by the next read or write).
 *
 * Threads: the library has no global state. Different handles may be used on different
 * threads at the same time. One handle must not be used by two threads at once (it may move
 * from one thread to another between calls).
 *
 * Buffers: the library never keeps a pointer the caller passed in; data given to a write is
 * copied before the call returns. A buffer returned by srsd_rtmp_read_tag belongs to the
 * caller, who frees it with srsd_rtmp_free. Strings returned by the library belong to it.
 *
 * Errors: 0 is success; a negative SRSD_RTMP_ERR_* code otherwise. srsd_rtmp_strerror names
 * a code; srsd_rtmp_last_error says what happened on a handle. After ERR_IO, ERR_PROTOCOL,
 * ERR_HANDSHAKE or ERR_CLOSED, and after ERR_TIMEOUT from a write, the connection is gone:
 * later calls answer ERR_STATE; destroy the handle. ERR_TIMEOUT from srsd_rtmp_read_tag
 * leaves the handle usable.
 */
#ifndef SRSD_RTMP_H
#define SRSD_RTMP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Error codes. */
#define SRSD_RTMP_OK 0
#define SRSD_RTMP_ERR_ARG (-1)       /* NULL or invalid argument (bad tag type, empty data) */
#define SRSD_RTMP_ERR_URL (-2)       /* not rtmp://host[:port]/app/stream */
#define SRSD_RTMP_ERR_IO (-3)        /* socket error: refused, reset */
#define SRSD_RTMP_ERR_TIMEOUT (-4)   /* the step did not finish within its timeout */
#define SRSD_RTMP_ERR_HANDSHAKE (-5) /* the RTMP handshake failed */
#define SRSD_RTMP_ERR_PROTOCOL (-6)  /* the server broke the RTMP protocol */
#define SRSD_RTMP_ERR_REJECTED (-7)  /* the server refused connect, publish or play */
#define SRSD_RTMP_ERR_CLOSED (-8)    /* the server closed the connection (end of stream) */
#define SRSD_RTMP_ERR_STATE (-9)     /* call out of order: write before publish, ... */
#define SRSD_RTMP_ERR_MEDIA (-10)    /* raw media that cannot be packed */
#define SRSD_RTMP_ERR_INTERNAL (-11) /* out of memory, no runtime, internal error */

/* FLV tag types (FLV spec E.4.1). */
#define SRSD_RTMP_TAG_AUDIO 8
#define SRSD_RTMP_TAG_VIDEO 9
#define SRSD_RTMP_TAG_SCRIPT 18

/* A connection. Opaque. */
typedef struct srsd_rtmp srsd_rtmp_t;

/*
 * A handle for url, "rtmp://host[:port]/app[/more]/stream[?query]" (the stream is what follows
 * the last '/', as SRS and librtmp split it). Nothing is connected yet. NULL when the URL is
 * bad or memory is short.
 */
srsd_rtmp_t *srsd_rtmp_create(const char *url);

/* Closes the connection (unpublishing politely, bounded by 1 s) and frees the handle. NULL is
 * allowed. The handle must not be used afterwards. */
void srsd_rtmp_destroy(srsd_rtmp_t *h);

/* The bound of each later write and of reads given no timeout (ms; <= 0: 30 s). */
int srsd_rtmp_set_timeout(srsd_rtmp_t *h, int io_timeout_ms);

/* TCP connect, RTMP handshake and the connect command (waits for its _result); each of the
 * three steps is bounded by timeout_ms. */
int srsd_rtmp_connect(srsd_rtmp_t *h, int timeout_ms);

/* Starts publishing the URL's stream (FMLE sequence); waits for NetStream.Publish.Start. */
int srsd_rtmp_publish(srsd_rtmp_t *h, int timeout_ms);

/* Starts playing the URL's stream; waits for NetStream.Play.Start. */
int srsd_rtmp_play(srsd_rtmp_t *h, int timeout_ms);

/*
 * Sends one FLV tag body (what follows the 11-byte tag header in a file: for video the
 * FrameType/CodecID byte first, for audio the SoundFormat byte, for script data AMF0
 * onMetaData) of type SRSD_RTMP_TAG_AUDIO, _VIDEO or _SCRIPT, stamped timestamp_ms. size is
 * at most 16 MiB - 1. Needs a publishing handle.
 */
int srsd_rtmp_write_tag(srsd_rtmp_t *h, int type, uint32_t timestamp_ms, const uint8_t *data,
                        size_t size);

/*
 * Sends one H.264 access unit in Annex B form (NAL units after 00 00 01 or 00 00 00 01 start
 * codes), decode time dts_ms and presentation time pts_ms. SPS and PPS become the AVC
 * sequence header (sent before the first frame and again whenever they change); access unit
 * delimiters are dropped; an IDR makes a keyframe. A frame before the first SPS and PPS is
 * SRSD_RTMP_ERR_MEDIA.
 */
int srsd_rtmp_write_h264(srsd_rtmp_t *h, uint32_t dts_ms, uint32_t pts_ms, const uint8_t *data,
                         size_t size);

/*
 * Sends one HEVC access unit in Annex B form, as srsd_rtmp_write_h264; VPS, SPS and PPS become
 * the sequence header. Sent as Enhanced RTMP (FourCC "hvc1"), which SRS 6+, srsd and recent
 * ffmpeg read.
 */
int srsd_rtmp_write_hevc(srsd_rtmp_t *h, uint32_t dts_ms, uint32_t pts_ms, const uint8_t *data,
                         size_t size);

/*
 * Sends AAC in ADTS form: one or more whole ADTS frames, the first stamped timestamp_ms and
 * each next one 1024 samples later. The AudioSpecificConfig is sent first, and again when it
 * changes.
 */
int srsd_rtmp_write_aac(srsd_rtmp_t *h, uint32_t timestamp_ms, const uint8_t *data, size_t size);

/*
 * Reads the next audio, video or script tag of a playing handle, waiting at most timeout_ms
 * (<= 0: the handle's io timeout). On success *type is an SRSD_RTMP_TAG_* value,
 * *timestamp_ms its time, *data a buffer of *size bytes (the FLV tag body) that the caller
 * frees with srsd_rtmp_free. On failure *data is NULL and *size 0. SRSD_RTMP_ERR_TIMEOUT
 * leaves the handle usable; SRSD_RTMP_ERR_CLOSED is the end of the stream.
 */
int srsd_rtmp_read_tag(srsd_rtmp_t *h, int *type, uint32_t *timestamp_ms, uint8_t **data,
                       size_t *size, int timeout_ms);

/* Frees a buffer returned by srsd_rtmp_read_tag. NULL is allowed. */
void srsd_rtmp_free(void *data);

/* A static description of an error code. Never NULL. */
const char *srsd_rtmp_strerror(int code);

/* What the last failed call on h said (the server's status code, the step that timed out),
 * valid until the next call on h; "" when there is none. NULL h gives "". */
const char *srsd_rtmp_last_error(const srsd_rtmp_t *h);

#ifdef __cplusplus
}
#endif

#endif /* SRSD_RTMP_H */
