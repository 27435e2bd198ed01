/* buf.h -- a growable byte buffer.
 *
 * The encoders append to an sl_buf; the writer hands its bytes to libuv. The buffer owns
 * its memory; sl_buf_free releases it. Appends never fail silently: allocation failure
 * aborts the process with a message, since a stream processor out of memory cannot
 * recover in any useful way. */
#ifndef SL_BUF_H
#define SL_BUF_H

#include <stddef.h>

typedef struct sl_buf {
    char *data;     /* bytes, not NUL-terminated unless sl_buf_cstr was called */
    size_t len;     /* bytes in use */
    size_t cap;     /* bytes allocated */
} sl_buf;

void sl_buf_init(sl_buf *b);
void sl_buf_reserve(sl_buf *b, size_t extra);       /* ensures cap >= len + extra */
void sl_buf_append(sl_buf *b, const void *p, size_t n);
void sl_buf_putc(sl_buf *b, char c);
void sl_buf_printf(sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sl_buf_cstr(sl_buf *b);                  /* NUL-terminates, returns data */
void sl_buf_reset(sl_buf *b);                        /* len = 0, keeps the memory */
void sl_buf_free(sl_buf *b);

#endif
